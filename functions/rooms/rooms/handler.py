"""Live classroom routes: rooms, join tokens, recordings, participants, and LiveKit's webhook."""

# No `from __future__ import annotations` here: Powertools resolves each route's dependencies with
# typing.get_type_hints on every request, and string annotations are re-compiled each time.
from datetime import datetime
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from verriflo.api import (
    PUBLIC,
    Envelope,
    Org,
    body_text,
    create_app,
    lambda_handler,
    ok,
    protected,
    responses,
)

from rooms import joining, lifecycle, listing, models, participants, recordings, webhooks

app = create_app()
api = protected(app, "rooms")
TAGS = ["rooms"]


def playback_base() -> str:
    """Where this API is reached from outside: a recording's playback URL goes through the CDN
    API's stream proxy (verriflo.playback, imported here: only the recording routes need it)."""
    from verriflo import playback

    return playback.base_url(app.current_event)


@api.post(
    "/v1/room/create",
    summary="Create a live room and the creator's join token",
    tags=TAGS,
    responses=responses(models.RoomCreated, 400, 401, 402, 429, 503),
)
def create_room(body: models.CreateRoom, org: Org) -> Envelope[models.RoomCreated]:
    """A new room (roomId never used before by the org) and a token for its creator (TEACHER by default)."""
    return ok(joining.create_room(org, body))


@api.post(
    "/v1/room/<room_id>/join",
    summary="A join token for a live room",
    tags=TAGS,
    responses=responses(models.JoinInfo, 400, 401, 402, 404, 410, 429, 503),
)
def join_room(room_id: str, body: models.JoinRoom, org: Org) -> Envelope[models.JoinInfo]:
    """Token and iframe URL for one participant (STUDENT by default)."""
    return ok(joining.join_room(org, room_id, body))


@api.get(
    "/v1/room/<room_id>/status",
    summary="Whether a room exists and what it is doing",
    tags=TAGS,
    responses=responses(models.RoomStatus, 401, 429, 503),
)
def room_status(room_id: str, org: Org) -> Envelope[models.RoomStatus]:
    """Live state of the room; a room the org never created answers `exists: false`."""
    return ok(lifecycle.room_status(org, room_id))


@api.delete(
    "/v1/room/<room_id>",
    summary="End the class",
    tags=TAGS,
    responses=responses(models.RoomDestroyed, 401, 404, 410, 429, 503),
)
def destroy_room(room_id: str, org: Org) -> Envelope[models.RoomDestroyed]:
    """Disconnect everyone and end the room; its roomId stays used forever."""
    return ok(lifecycle.destroy_room(org, room_id))


@api.get(
    "/v1/room/<room_id>/summary",
    summary="Credits, participants and stay of a class",
    tags=TAGS,
    responses=responses(models.RoomSummary, 401, 404, 429, 503),
)
def room_summary(room_id: str, org: Org) -> Envelope[models.RoomSummary]:
    """Totals of a live or finished class."""
    return ok(lifecycle.room_summary(org, room_id))


@api.get(
    "/v1/rooms",
    summary="The organisation's rooms, newest first",
    tags=TAGS,
    responses=responses(models.RoomList, 400, 401, 429, 503),
)
def list_rooms(
    org: Org,
    status: Annotated[models.RoomState | None, Query(description="live or finished; default both")] = None,
    start: Annotated[
        datetime | None, Query(alias="from", description="created at or after (ISO 8601 with zone)")
    ] = None,
    end: Annotated[
        datetime | None, Query(alias="to", description="created before (ISO 8601 with zone)")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200, description="a previous page's nextCursor")] = None,
) -> Envelope[models.RoomList]:
    """Title, status, times, participants (now and in total), recordings and credits of each room;
    paginated with `nextCursor`."""
    return ok(listing.list_rooms(org, status=status, start=start, end=end, limit=limit, cursor=cursor))


@api.post(
    "/v1/room/<room_id>/recording/start",
    summary="Start recording the class",
    tags=TAGS,
    responses=responses(models.RecordingStarted, 400, 401, 402, 403, 404, 409, 410, 429, 503),
)
def start_recording(
    room_id: str, org: Org, body: Annotated[models.StartRecording | None, Body()] = None
) -> Envelope[models.RecordingStarted]:
    """A room-composite recording (layout and preset from `options`) to the recordings bucket."""
    return ok(recordings.start_recording(org, room_id, body or models.StartRecording()))


@api.post(
    "/v1/room/<room_id>/recording/stop",
    summary="Stop recording the class",
    tags=TAGS,
    responses=responses(models.RecordingStopped, 400, 401, 404, 409, 410, 429, 503),
)
def stop_recording(
    room_id: str, org: Org, body: Annotated[models.StopRecording | None, Body()] = None
) -> Envelope[models.RecordingStopped]:
    """Stop the active (or the named) recording."""
    return ok(recordings.stop_recording(org, room_id, body or models.StopRecording()))


@api.get(
    "/v1/room/<room_id>/recording/list",
    summary="The class's recordings",
    tags=TAGS,
    responses=responses(models.RecordingList, 401, 404, 429, 503),
)
def list_recordings(room_id: str, org: Org) -> Envelope[models.RecordingList]:
    """Recordings with their status, how long they stay downloadable, and their HLS video."""
    return ok(recordings.list_recordings(org, room_id, playback_base()))


@api.get(
    "/v1/room/<room_id>/recording/<egress_id>/download",
    summary="A download link for a recording",
    tags=TAGS,
    responses=responses(models.RecordingDownload, 401, 404, 409, 410, 429, 503),
)
def download_recording(room_id: str, egress_id: str, org: Org) -> Envelope[models.RecordingDownload]:
    """A short-lived MP4 link (and the HLS video's); recordings are deleted 6 hours after class."""
    return ok(recordings.download_recording(org, room_id, egress_id, playback_base()))


@api.get(
    "/v1/room/<room_id>/participants",
    summary="Who is in the class",
    tags=TAGS,
    responses=responses(models.ParticipantList, 401, 404, 410, 429, 503),
)
def list_participants(room_id: str, org: Org) -> Envelope[models.ParticipantList]:
    """Connected participants with their role, tracks and permissions."""
    return ok(participants.list_participants(org, room_id))


@api.delete(
    "/v1/room/<room_id>/participants/<uid>",
    summary="Remove a participant",
    tags=TAGS,
    responses=responses(models.ParticipantRemoved, 401, 404, 410, 429, 503),
)
def remove_participant(room_id: str, uid: str, org: Org) -> Envelope[models.ParticipantRemoved]:
    """Disconnect one participant from the class, or shut out one holding a join token unconnected."""
    return ok(participants.remove_participant(org, room_id, uid))


@api.post(
    "/v1/room/<room_id>/participants/<uid>/mute",
    summary="Mute a participant's track",
    tags=TAGS,
    responses=responses(models.ParticipantView, 400, 401, 404, 410, 429, 503),
)
def mute_track(room_id: str, uid: str, body: models.MuteTrack, org: Org) -> Envelope[models.ParticipantView]:
    """Mute (or unmute) one published track."""
    return ok(participants.mute_track(org, room_id, uid, body))


@api.patch(
    "/v1/room/<room_id>/participants/<uid>",
    summary="Change a participant's role or permissions",
    tags=TAGS,
    responses=responses(models.ParticipantView, 400, 401, 404, 410, 429, 503),
)
def update_participant(
    room_id: str, uid: str, body: models.UpdateParticipant, org: Org
) -> Envelope[models.ParticipantView]:
    """New role (grants follow it) and/or single permission changes, applied live."""
    return ok(participants.update_participant(org, room_id, uid, body))


@app.post(
    "/v1/livekit/webhook",
    summary="LiveKit webhook receiver",
    tags=["livekit"],
    responses=responses(models.WebhookAck, 400, 401, 503),
    openapi_extensions=PUBLIC,
)
def livekit_webhook() -> Envelope[models.WebhookAck]:
    """Signed by LiveKit (JWT in Authorization over the body's sha256); each event id handled once."""
    event = app.current_event
    return ok(webhooks.ingest(body_text(event.raw_event), event.headers.get("Authorization")))


handler = lambda_handler(app)
