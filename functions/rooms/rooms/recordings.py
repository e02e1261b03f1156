"""Recording a class: start and stop (LiveKit Egress, with our API's own credentials, into the
recordings bucket), the room's recordings and a download link for each MP4 while it is kept, and
each recording's HLS video (the transcoder makes it from the MP4; `verriflo.media`)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from verriflo.auth import OrgContext
from verriflo.errors import Conflict, Forbidden, Gone, NotFound
from verriflo.orgs import now

from rooms import lifecycle, lk, recording_links, recording_store, records, session_store, store
from rooms.config import live_settings
from rooms.models import (
    Recording,
    RecordingDownload,
    RecordingList,
    RecordingStarted,
    RecordingStopped,
    StartRecording,
    StopRecording,
)
from rooms.policy import RECORDING_ROLES


def start_recording(org: OrgContext, room_id: str, body: StartRecording) -> RecordingStarted:
    """Start a room-composite recording, if the room allows it and a teacher's right is present."""
    room = lifecycle.live_room(org, room_id)
    if room.customization.get("allowRecording") is False:
        raise Forbidden("Recording is turned off for this room (customization.allowRecording is false).")
    roles = sorted(RECORDING_ROLES)
    if body.requested_by is not None:
        if not session_store.connected(org.org_id, room_id, roles=roles, uid=body.requested_by, limit=1):
            raise Forbidden("Only a connected TEACHER or ADMIN of this room may start a recording.")
    elif not session_store.connected(org.org_id, room_id, roles=roles, limit=1):
        raise Forbidden("A recording needs a TEACHER or ADMIN in the room.")
    if room.active_egress_id:
        raise Conflict("A recording is already running in this room.")
    lifecycle.require_within_caps(org, room_id)  # its transcode and storage are charged to the room
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
    recording_store.insert_recording(
        records.EgressRecording(
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
    room = lifecycle.live_room(org, room_id)
    egress_id = body.egress_id or room.active_egress_id
    if egress_id is None:
        raise Conflict("No recording is running in this room.")
    if recording_store.find_recording(org.org_id, room_id, egress_id) is None:
        raise NotFound(f"No recording '{egress_id}' in room '{room_id}'.")
    status = lk.stop_recording(egress_id)
    store.release_recording_slot(org.org_id, room_id, egress_id)
    recording_store.update_recording(egress_id, records.RecordingReport(status=status))
    return RecordingStopped(egress_id=egress_id, room_id=room_id, status=status, stopped_at=now())


def _available_until(room: records.Room) -> datetime | None:
    return room.ended_at + lifecycle.retention() if room.ended_at else None


def _video_fields(video: Any, base_url: str) -> dict[str, Any]:
    """A recording's HLS video (a verriflo.media.Video, or None before the MP4 is stored and after
    the retention deleted it) as the answers show it."""
    if video is None:
        return {}
    from verriflo import playback

    return {
        "video_id": video.id,
        "video_status": video.status,
        "playback_url": playback.master_url(video, base_url),
    }


def _recording(
    found: records.EgressRecording, until: datetime | None, video: Any, base_url: str
) -> Recording:
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
        **_video_fields(video, base_url),
    )


def list_recordings(org: OrgContext, room_id: str, base_url: str) -> RecordingList:
    """The room's recordings, whether each can still be downloaded, and its HLS video: two queries."""
    from verriflo import media as media_records

    room = lifecycle.known_room(org, room_id)
    until = _available_until(room)
    found = recording_store.recordings_of(org.org_id, room_id)
    videos = media_records.recording_videos(org.org_id, room_id, [r.key for r in found])
    return RecordingList(
        room_id=room_id, recordings=[_recording(r, until, videos.get(r.key or ""), base_url) for r in found]
    )


def download_recording(org: OrgContext, room_id: str, egress_id: str, base_url: str) -> RecordingDownload:
    """A short-lived link to the MP4, while it is kept (6 hours after class), and its HLS video."""
    room = lifecycle.known_room(org, room_id)
    found = recording_store.find_recording(org.org_id, room_id, egress_id)
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
    video = media_records.recording_videos(org.org_id, room_id, [found.key]).get(found.key or "")
    return RecordingDownload(
        egress_id=egress_id,
        url=url,
        expires_at=current + timedelta(seconds=ttl),
        **_video_fields(video, base_url),
    )
