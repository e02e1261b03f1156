"""A class's life: the room's LiveKit name, the lookups every route starts with, its status, its
end (the API's destroy, or LiveKit's `room_finished` webhook) and what the end implies, its summary,
and the spending caps that hold while it runs.

Ending a class records, in the same update that marks the room ended, what the end implies: the
recordings' retention clock and the `room.finished` event (which also starts the class summary).
`end_effects` lists them; they are then carried out through `verriflo.outbox`, and whatever an
interrupted attempt left undone is carried out by the retry of the same request, by the other
path's later call, or by the rooms sweep.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from verriflo import outbox
from verriflo.auth import OrgContext
from verriflo.errors import Gone, NotFound
from verriflo.orgs import now

from rooms import lk, recording_store, records, session_store, store
from rooms.models import RoomDestroyed, RoomStatus, RoomSummary, Timestamps

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

    recording_store.schedule_recording_deletion(org_id, room_id, ended_at + retention())
    media_records.class_ended(org_id, room_id, ended_at)


outbox.register("rooms.class_ended", class_ended)


def end_effects(room: records.Room, ended_at: datetime, reason: str) -> list[dict[str, Any]]:
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


def live_room(org: OrgContext, room_id: str) -> records.Room:
    """The org's room while its class runs: NotFound (another org's too), Gone once it ended."""
    room = store.find_room(org.org_id, room_id)
    if room is None:
        raise NotFound(f"No room '{room_id}' in this organisation.")
    if room.is_ended:
        raise Gone(f"The class in room '{room_id}' has ended.")
    return room


def known_room(org: OrgContext, room_id: str) -> records.Room:
    """The org's room, running or ended: NotFound for a room it never made (another org's too)."""
    room = store.find_room(org.org_id, room_id)
    if room is None:
        raise NotFound(f"No room '{room_id}' in this organisation.")
    return room


def require_within_caps(org: OrgContext, room_id: str, student_id: str | None = None) -> None:
    """Refuse (402) what would spend for a room (live minutes, a recording's transcode and storage)
    or a student once the org's, the room's or the student's cap is used up, whatever the balance."""
    from verriflo import ledger

    ledger.require_within_caps(org.org_id, room_id=room_id, student_id=student_id)


def room_status(org: OrgContext, room_id: str) -> RoomStatus:
    """What the room is doing now; a room this org never created is `exists: false`."""
    room = store.find_room(org.org_id, room_id)
    if room is None:
        return RoomStatus(exists=False, room_id=room_id)
    active = not room.is_ended
    count = session_store.connected(org.org_id, room_id) if active else 0
    teacher = (
        count > 0 and session_store.connected(org.org_id, room_id, roles=["TEACHER", "ADMIN"], limit=1) > 0
    )
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
    room = known_room(org, room_id)
    if room.is_ended:
        if room.pending_effects and room.ended is not None and room.ended.by == "api" and room.ended_at:
            store.carry_out_effects(room)
            return _destroyed(room_id, room.ended, room.ended_at)
        raise Gone(f"The class in room '{room_id}' has ended.")
    present = [p for p in lk.list_participants(room.lk_name) if p.is_standard]
    lk.delete_room(room.lk_name)
    ended_at = now()
    ended = records.Ending(
        by="api", participants_disconnected=len(present), was_recording=room.active_egress_id is not None
    )
    before = store.end_room(org.org_id, room_id, ended_at, end_effects(room, ended_at, "api"), ended)
    if before is None:
        raise Gone(f"The class in room '{room_id}' has ended.")
    store.carry_out_effects(before)
    return _destroyed(room_id, ended, ended_at)


def _destroyed(room_id: str, ended: records.Ending, ended_at: datetime) -> RoomDestroyed:
    return RoomDestroyed(
        room_id=room_id,
        participants_disconnected=ended.participants_disconnected,
        was_recording=ended.was_recording,
        ended_at=ended_at,
    )


def credits(by_service: dict[str, int]) -> tuple[float, dict[str, float]]:
    """A room's ledger debits per service as credits, and their total."""
    from verriflo.ledger import from_milli

    return from_milli(sum(by_service.values())), {k: from_milli(v) for k, v in sorted(by_service.items())}


def room_summary(org: OrgContext, room_id: str) -> RoomSummary:
    """Credits (the ledger's, every service), participants and average stay of a class."""
    room = known_room(org, room_id)
    sessions = session_store.sessions_of(org.org_id, room_id)
    current = now()
    stays = [s.seconds if s.left_at else (current - s.joined_at).total_seconds() for s in sessions]
    total, by_service = credits(store.room_credits_milli(org.org_id, [room_id])[room_id])
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
