"""Classroom logic: create, join, status, destroy, summary, recordings and participant management.

Plain Python over two collaborators, `store` (MongoDB) and `lk` (LiveKit). Create talks to LiveKit
before writing anything, so an unreachable LiveKit leaves no half-created room behind.

Ending a class (the API's destroy, or LiveKit's `room_finished` webhook) records, in the same update
that marks the room ended, what the end implies: the recordings' retention clock and the
`room.finished` event (which also starts the class summary). `end_effects` lists them; they are then
carried out through `verriflo.outbox`, and whatever an interrupted attempt left undone is carried out
by the retry of the same request, by the other path's later call, or by the rooms sweep.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError as PydanticValidationError
from verriflo import outbox
from verriflo.auth import OrgContext
from verriflo.errors import Conflict, Forbidden, Gone, NotFound, ValidationFailed
from verriflo.orgs import now

from rooms import lk, recording_links, store
from rooms.config import live_settings
from rooms.models import (
    CreateRoom,
    JoinInfo,
    JoinRoom,
    MuteTrack,
    Participant,
    ParticipantList,
    ParticipantRemoved,
    ParticipantView,
    Permissions,
    Recording,
    RecordingDownload,
    RecordingList,
    RecordingStarted,
    RecordingStopped,
    RoomCreated,
    RoomDestroyed,
    RoomList,
    RoomListItem,
    RoomListQuery,
    RoomRef,
    RoomStatus,
    RoomSummary,
    StartRecording,
    StopRecording,
    Timestamps,
    Track,
    UpdateParticipant,
)
from rooms.policy import RECORDING_ROLES, Grants, effective_customization, grants_for, with_changes

# verriflo.ledger and verriflo.media (the media records) are imported in the functions that use them:
# their models and settings are needed by a few routes only, and every cold start would pay for them.


def livekit_name(org_id: str, room_id: str) -> str:
    """The room's name in LiveKit: one LiveKit project serves every org, so names carry the org.
    A roomId cannot contain '.', so the split is unambiguous."""
    return f"{org_id}.{room_id}"


def retention() -> timedelta:
    """How long recordings stay after class (API.md: 6 hours): the media records' setting, since the
    transcoder's retention sweep is what deletes the files."""
    from verriflo import media as media_records

    return timedelta(hours=media_records.media_settings().recording_retention_hours)


def class_ended(org_id: str, room_id: str, ended_at: datetime) -> None:
    """Start the recordings' retention clock: ours (download links) and the media records'."""
    from verriflo import media as media_records

    store.schedule_recording_deletion(org_id, room_id, ended_at + retention())
    media_records.class_ended(org_id, room_id, ended_at)


outbox.register("rooms.class_ended", class_ended)


def end_effects(room: store.Room, ended_at: datetime, reason: str) -> list[dict[str, Any]]:
    """What ending this room implies, recorded with the end (ids are the room's: a redo is the same)."""
    return [
        outbox.call("rooms.class_ended", org_id=room.org_id, room_id=room.room_id, ended_at=ended_at),
        outbox.event(
            "room.finished",
            room.org_id,
            {"roomId": room.room_id, "sid": room.sid, "endedAt": ended_at.isoformat(), "reason": reason},
            event_id=f"room.finished.{room.sid}",
        ),
    ]


def _reused(room_id: str) -> ValidationFailed:
    message = (
        f"Invalid value for 'roomId': '{room_id}' was already used by this organisation "
        "and can never be reused."
    )
    return ValidationFailed(
        message,
        details={"fields": [{"field": "roomId", "message": "already used", "type": "room_id_reused"}]},
    )


def _live_room(org: OrgContext, room_id: str) -> store.Room:
    room = store.find_room(org.org_id, room_id)
    if room is None:
        raise NotFound(f"No room '{room_id}' in this organisation.")
    if room.is_ended:
        raise Gone(f"The class in room '{room_id}' has ended.")
    return room


def _known_room(org: OrgContext, room_id: str) -> store.Room:
    room = store.find_room(org.org_id, room_id)
    if room is None:
        raise NotFound(f"No room '{room_id}' in this organisation.")
    return room


def _join(room: store.Room, participant: Participant, given: dict[str, Any], default_role: str) -> JoinInfo:
    role = participant.role or default_role
    customization = effective_customization(room.customization, given)
    grants = grants_for(role, customization)
    metadata = {
        "role": role,
        "roomId": room.room_id,
        "title": room.title,
        "customization": customization,
    }
    settings = live_settings()
    token, expires = lk.mint_token(
        identity=participant.uid,
        name=participant.name,
        room=room.lk_name,
        grants=grants,
        metadata=metadata,
        ttl_s=settings.join_token_ttl_s,
    )
    store.record_grant(
        store.JoinGrant(
            org_id=room.org_id,
            room_id=room.room_id,
            uid=participant.uid,
            role=role,
            issued_at=now(),
            expires_at=expires,
        )
    )
    return JoinInfo(
        token=token,
        iframe_url=f"{settings.live_ui_url.rstrip('/')}/iframe/live?token={token}",
        expires_at=expires,
    )


def _require_class_credits(org: OrgContext, room_id: str) -> None:
    """A class may start only while the org holds the minimum credits (API.md) and its caps allow."""
    from verriflo import ledger, pricing

    ledger.require_credits(
        org.org_id, pricing.MIN_CREDITS_TO_START_CLASS, pricing.CLASS_START_MESSAGE, room_id=room_id
    )


def _require_within_caps(org: OrgContext, room_id: str, student_id: str | None = None) -> None:
    """Refuse (402) what would spend for a room (live minutes, a recording's transcode and storage)
    or a student once the org's, the room's or the student's cap is used up, whatever the balance."""
    from verriflo import ledger

    ledger.require_within_caps(org.org_id, room_id=room_id, student_id=student_id)


def create_room(org: OrgContext, body: CreateRoom) -> RoomCreated:
    """Create the LiveKit room, then remember it; the creator gets a join token."""
    _require_class_credits(org, body.room_id)
    if store.find_room(org.org_id, body.room_id) is not None:
        raise _reused(body.room_id)
    name = livekit_name(org.org_id, body.room_id)
    customization = body.customization.given()
    sid = lk.create_room(
        name,
        empty_timeout=body.settings.empty_timeout,
        max_participants=body.settings.max_participants,
        metadata={"orgId": org.org_id, "roomId": body.room_id, "title": body.title},
    )
    room = store.Room(
        org_id=org.org_id,
        room_id=body.room_id,
        title=body.title,
        course_id=body.course_id,
        lk_name=name,
        sid=sid,
        customization=customization,
        settings=body.settings.model_dump(by_alias=True),
        created_by=body.participant.uid,
        created_at=now(),
    )
    try:
        room = store.insert_room(room)
    except Conflict as exc:
        # Lost a race with a concurrent create of the same roomId; the winner owns the LiveKit room.
        raise _reused(body.room_id) from exc
    joined = _join(room, body.participant, {}, "TEACHER")
    return RoomCreated(**joined.model_dump(), room=RoomRef(room_id=body.room_id, sid=sid))


def join_room(org: OrgContext, room_id: str, body: JoinRoom) -> JoinInfo:
    """A join token for a participant of a live room, whatever the org's balance (the 100-credit
    minimum guards starting a class: create), unless a spending cap is used up."""
    room = _live_room(org, room_id)
    role = body.participant.role or "STUDENT"
    student = body.participant.uid if role == "STUDENT" else None
    # The class was started (and its 100 credits checked) by create: whoever joins it, at any time,
    # is never refused for a low balance (live usage may take it below zero, API.md); caps still hold.
    _require_within_caps(org, room_id, student)
    return _join(room, body.participant, body.customization.given(), "STUDENT")


def room_status(org: OrgContext, room_id: str) -> RoomStatus:
    """What the room is doing now; a room this org never created is `exists: false`."""
    room = store.find_room(org.org_id, room_id)
    if room is None:
        return RoomStatus(exists=False, room_id=room_id)
    active = not room.is_ended
    count = store.connected(org.org_id, room_id) if active else 0
    teacher = count > 0 and store.connected(org.org_id, room_id, roles=["TEACHER", "ADMIN"], limit=1) > 0
    return RoomStatus(
        exists=True,
        is_active=active,
        room_id=room_id,
        title=room.title,
        participant_count=count,
        has_teacher=teacher,
        is_recording=active and room.active_egress_id is not None,
        created_at=room.created_at,
        started_at=room.started_at,
    )


def destroy_room(org: OrgContext, room_id: str) -> RoomDestroyed:
    """End the class: close the LiveKit room (disconnecting everyone) and keep the room as a tombstone.

    A retry of a destroy that ended the room but failed before its effects were all carried out
    completes them and answers as the first attempt would have; once they are done it is 410."""
    room = _known_room(org, room_id)
    if room.is_ended:
        if room.pending_effects and room.ended is not None and room.ended.by == "api" and room.ended_at:
            store.carry_out_effects(room)
            return _destroyed(room_id, room.ended, room.ended_at)
        raise Gone(f"The class in room '{room_id}' has ended.")
    present = [p for p in lk.list_participants(room.lk_name) if p.is_standard]
    lk.delete_room(room.lk_name)
    ended_at = now()
    ended = store.Ending(
        by="api", participants_disconnected=len(present), was_recording=room.active_egress_id is not None
    )
    before = store.end_room(org.org_id, room_id, ended_at, end_effects(room, ended_at, "api"), ended)
    if before is None:
        raise Gone(f"The class in room '{room_id}' has ended.")
    store.carry_out_effects(before)
    return _destroyed(room_id, ended, ended_at)


def _destroyed(room_id: str, ended: store.Ending, ended_at: datetime) -> RoomDestroyed:
    return RoomDestroyed(
        room_id=room_id,
        participants_disconnected=ended.participants_disconnected,
        was_recording=ended.was_recording,
        ended_at=ended_at,
    )


def _credits(by_service: dict[str, int]) -> tuple[float, dict[str, float]]:
    """A room's ledger debits per service as credits, and their total."""
    from verriflo.ledger import from_milli

    return from_milli(sum(by_service.values())), {k: from_milli(v) for k, v in sorted(by_service.items())}


def room_summary(org: OrgContext, room_id: str) -> RoomSummary:
    """Credits (the ledger's, every service), participants and average stay of a class."""
    room = _known_room(org, room_id)
    sessions = store.sessions_of(org.org_id, room_id)
    current = now()
    stays = [s.seconds if s.left_at else (current - s.joined_at).total_seconds() for s in sessions]
    total, by_service = _credits(store.room_credits_milli(org.org_id, [room_id])[room_id])
    return RoomSummary(
        room_id=room_id,
        room_name=room.title,
        total_credits=total,
        credits_by_service=by_service,
        total_participants=len({s.uid for s in sessions}),
        avg_stay=round(sum(stays) / len(stays), 1) if stays else 0.0,
        timestamps=Timestamps(started_at=room.started_at, ended_at=room.ended_at),
        status="finished" if room.is_ended else "live",
    )


_STORED_STATUS = {"live": "open", "finished": "ended"}


def _cursor(room: store.Room) -> str:
    raw = json.dumps({"t": room.created_at.isoformat(), "k": room.key}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _after(cursor: str) -> tuple[datetime, str]:
    """The (createdAt, key) a cursor pages past; anything we did not issue is a 400."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        at, key = datetime.fromisoformat(raw["t"]), raw["k"]
        if not isinstance(key, str) or at.tzinfo is None:
            raise ValueError(key)
    except (ValueError, TypeError, KeyError, binascii.Error) as exc:
        raise ValidationFailed("Invalid value for 'cursor': pass the nextCursor of a previous page.") from exc
    return at, key


def list_rooms(org: OrgContext, **filters: Any) -> RoomList:
    """A page of the org's rooms, newest first, with what a dashboard shows of each: four queries
    whatever the page size (rooms, sessions, recordings, ledger). `filters`: RoomListQuery's fields."""
    try:
        query = RoomListQuery(**filters)
    except PydanticValidationError as exc:
        reason = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise ValidationFailed(f"Invalid room listing: {reason}.") from exc
    after = _after(query.cursor) if query.cursor else None
    found = store.list_rooms(
        org.org_id,
        status=_STORED_STATUS[query.status] if query.status else None,
        created_from=query.start,
        created_to=query.end,
        after=after,
        limit=query.limit + 1,
    )
    page, more = found[: query.limit], len(found) > query.limit
    ids = [r.room_id for r in page]
    tallies = store.tallies(org.org_id, ids)
    credits = store.room_credits_milli(org.org_id, ids)
    items = []
    for room in page:
        tally = tallies[room.room_id]
        total, by_service = _credits(credits[room.room_id])
        items.append(
            RoomListItem(
                room_id=room.room_id,
                sid=room.sid,
                title=room.title,
                status="finished" if room.is_ended else "live",
                created_at=room.created_at,
                started_at=room.started_at,
                ended_at=room.ended_at,
                participants_now=0 if room.is_ended else tally.participants_now,
                total_participants=tally.participants_total,
                recordings=tally.recordings,
                total_credits=total,
                credits_by_service=by_service,
            )
        )
    return RoomList(rooms=items, next_cursor=_cursor(page[-1]) if more else None)


# --- recordings -----------------------------------------------------------------------------------


def start_recording(org: OrgContext, room_id: str, body: StartRecording) -> RecordingStarted:
    """Start a room-composite recording, if the room allows it and a teacher's right is present."""
    room = _live_room(org, room_id)
    if room.customization.get("allowRecording") is False:
        raise Forbidden("Recording is turned off for this room (customization.allowRecording is false).")
    roles = sorted(RECORDING_ROLES)
    if body.requested_by is not None:
        if not store.connected(org.org_id, room_id, roles=roles, uid=body.requested_by, limit=1):
            raise Forbidden("Only a connected TEACHER or ADMIN of this room may start a recording.")
    elif not store.connected(org.org_id, room_id, roles=roles, limit=1):
        raise Forbidden("A recording needs a TEACHER or ADMIN in the room.")
    if room.active_egress_id:
        raise Conflict("A recording is already running in this room.")
    _require_within_caps(org, room_id)  # its transcode and storage are charged to the room
    # The key shape the transcoder recognises (verriflo.media.RECORDING_KEY).
    key = f"recordings/{org.org_id}/{room_id}/{uuid.uuid4().hex}.mp4"
    from verriflo.media import media_settings

    bucket = media_settings().recordings_bucket
    egress_id = lk.start_recording(
        room.lk_name,
        layout=body.options.layout,
        preset=body.options.preset,
        bucket=bucket,
        key=key,
    )
    if not store.claim_recording_slot(org.org_id, room_id, egress_id):
        lk.stop_recording(egress_id)  # another start won the race; do not leave ours running
        raise Conflict("A recording is already running in this room.")
    started = now()
    store.insert_recording(
        store.EgressRecording(
            id=egress_id,
            org_id=org.org_id,
            room_id=room_id,
            status="EGRESS_STARTING",
            layout=body.options.layout,
            preset=body.options.preset,
            show_logo=body.options.show_logo,
            bucket=bucket,
            key=key,
            requested_by=body.requested_by,
            started_at=started,
        )
    )
    return RecordingStarted(egress_id=egress_id, room_id=room_id, started_at=started)


def stop_recording(org: OrgContext, room_id: str, body: StopRecording) -> RecordingStopped:
    """Stop the room's recording; the file is reported ready by LiveKit's egress_ended webhook."""
    room = _live_room(org, room_id)
    egress_id = body.egress_id or room.active_egress_id
    if egress_id is None:
        raise Conflict("No recording is running in this room.")
    if store.find_recording(org.org_id, room_id, egress_id) is None:
        raise NotFound(f"No recording '{egress_id}' in room '{room_id}'.")
    status = lk.stop_recording(egress_id)
    store.release_recording_slot(org.org_id, room_id, egress_id)
    store.update_recording(egress_id, store.RecordingReport(status=status))
    return RecordingStopped(egress_id=egress_id, room_id=room_id, status=status, stopped_at=now())


def _available_until(room: store.Room) -> datetime | None:
    return room.ended_at + retention() if room.ended_at else None


def _recording(found: store.EgressRecording, until: datetime | None) -> Recording:
    ready = found.status == "EGRESS_COMPLETE" and (until is None or until > now())
    return Recording(
        egress_id=found.id,
        status=found.status,
        layout=found.layout,
        preset=found.preset,
        show_logo=found.show_logo,
        started_at=found.started_at,
        ended_at=found.ended_at,
        duration=found.duration,
        size=found.size,
        available_until=until,
        downloadable=ready,
    )


def list_recordings(org: OrgContext, room_id: str) -> RecordingList:
    """The room's recordings and whether each can still be downloaded."""
    room = _known_room(org, room_id)
    until = _available_until(room)
    return RecordingList(
        room_id=room_id, recordings=[_recording(d, until) for d in store.recordings_of(org.org_id, room_id)]
    )


def download_recording(org: OrgContext, room_id: str, egress_id: str) -> RecordingDownload:
    """A short-lived link to the MP4, while it is kept (6 hours after class)."""
    room = _known_room(org, room_id)
    found = store.find_recording(org.org_id, room_id, egress_id)
    if found is None:
        raise NotFound(f"No recording '{egress_id}' in room '{room_id}'.")
    until = _available_until(room)
    current = now()
    if until is not None and until <= current:
        raise Gone("Recordings are kept for 6 hours after class; this one was deleted.")
    if found.status != "EGRESS_COMPLETE":
        raise Conflict(f"The recording is not ready yet (status {found.status}).")
    from verriflo import media as media_records

    if not media_records.recording_location(org.org_id, room_id, found.bucket, found.key):
        # Only ever a record from before recordings were fenced: never presign somewhere else.
        raise NotFound(f"No recording '{egress_id}' in room '{room_id}'.")
    ttl = live_settings().download_url_ttl_s
    if until is not None:
        ttl = max(60, min(ttl, int((until - current).total_seconds())))
    url = recording_links.download_url(found.bucket, found.key, ttl, f"{room_id}-{egress_id}.mp4")
    return RecordingDownload(egress_id=egress_id, url=url, expires_at=current + timedelta(seconds=ttl))


# --- participants ---------------------------------------------------------------------------------


def _view(person: lk.Person, role: str | None) -> ParticipantView:
    """A participant as LiveKit sees them, with the role from our session records (LiveKit's
    metadata is shown to, and could be written by, clients: never taken as a role)."""
    perm = person.permission
    return ParticipantView(
        uid=person.identity,
        name=person.name,
        role=role,
        state=person.state,
        joined_at=person.joined_at,
        tracks=[Track(sid=t.sid, source=t.source, type=t.type, muted=t.muted) for t in person.tracks],
        permissions=Permissions(
            can_publish=perm.can_publish,
            can_subscribe=perm.can_subscribe,
            can_publish_data=perm.can_publish_data,
            can_screen_share=perm.can_screen_share,
            hidden=perm.hidden,
        )
        if perm
        else None,
    )


def _present(room: store.Room, uid: str) -> lk.Person:
    for info in lk.list_participants(room.lk_name):
        if info.identity == uid:
            return info
    raise NotFound(f"No participant '{uid}' is connected to room '{room.room_id}'.")


def _session(org: OrgContext, room_id: str, uid: str) -> store.Session | None:
    return store.open_sessions(org.org_id, room_id, uid).get(uid)


def _role(session: store.Session | None) -> str | None:
    return session.role if session else None


def list_participants(org: OrgContext, room_id: str) -> ParticipantList:
    """Who is in the class now, as LiveKit sees it."""
    room = _live_room(org, room_id)
    people = [p for p in lk.list_participants(room.lk_name) if p.is_standard]
    sessions = store.open_sessions(org.org_id, room_id) if people else {}
    return ParticipantList(
        room_id=room_id, participants=[_view(p, _role(sessions.get(p.identity))) for p in people]
    )


def remove_participant(org: OrgContext, room_id: str, uid: str) -> ParticipantRemoved:
    """Disconnect a participant (their page posts `participant_removed`)."""
    room = _live_room(org, room_id)
    _present(room, uid)
    # Recorded first: should LiveKit fail, the tutor already refuses them and a retry is harmless.
    store.mark_removed(org.org_id, room_id, uid, now())
    lk.remove_participant(room.lk_name, uid)
    return ParticipantRemoved(room_id=room_id, uid=uid)


def mute_track(org: OrgContext, room_id: str, uid: str, body: MuteTrack) -> ParticipantView:
    """Mute or unmute one of a participant's tracks."""
    room = _live_room(org, room_id)
    info = _present(room, uid)
    if body.track_sid not in {t.sid for t in info.tracks}:
        raise NotFound(f"Participant '{uid}' publishes no track '{body.track_sid}'.")
    lk.mute_track(room.lk_name, uid, body.track_sid, body.muted)
    return _view(_present(room, uid), _role(_session(org, room_id, uid)))


def update_participant(org: OrgContext, room_id: str, uid: str, body: UpdateParticipant) -> ParticipantView:
    """Change a connected participant's role (and with it their grants) or single permissions.

    The role kept, when none is given, and the customization come from our session records (what our
    join token granted, or a role change since), and the participant's metadata is written afresh
    from them: nothing the participant's client could have written is read."""
    room = _live_room(org, room_id)
    _present(room, uid)
    session = _session(org, room_id, uid)
    role = body.role or _role(session) or "STUDENT"
    customization = effective_customization(room.customization, session.customization if session else {})
    grants: Grants = grants_for(role, customization)
    if body.permissions is not None:
        grants = with_changes(grants, body.permissions.model_dump(by_alias=False))
    meta = {"role": role, "roomId": room_id, "title": room.title, "customization": customization}
    updated = lk.update_participant(room.lk_name, uid, grants=grants, metadata=meta, name=body.name)
    if body.role:
        store.set_session_role(org.org_id, room_id, uid, role)
    return _view(updated, role)
