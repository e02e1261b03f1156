"""LiveKit webhooks: verify, handle each event, keep room and participant state, meter
participant-minutes into the ledger and publish the domain events.

Each step is idempotent on its own (sessions keyed by LiveKit's participant sid, ledger entries by
session, domain events by LiveKit's event id, a room's end and its effects by `verriflo.outbox`, a
removal from the classroom page by the grant's conditional update), so a retry after a failure
part-way through repeats nothing and completes what is left. The event id is claimed with a short
lease, not for good, and marked done only after its handling: a delivery that died without a Python
exception (timeout, out of memory) leaves a lease that runs out within minutes, and LiveKit's next
retry handles the event. A delivery that finds the id leased by a live attempt answers 503 (LiveKit
delivers it again), so a 2xx always means the work is done.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from verriflo import events
from verriflo.errors import ServiceUnavailable
from verriflo.observability import logger
from verriflo.orgs import now

from rooms import grant_store, hook_store, lifecycle, lk, recording_store, records, session_store, store
from rooms.config import live_settings
from rooms.models import WebhookAck
from rooms.policy import ROLES

# LiveKit names our rooms `<orgId>.<roomId>` (lifecycle.livekit_name).
OUR_NAME = re.compile(r"^org_[0-9a-f]{8,40}\.[A-Za-z0-9_-]{1,100}$")
UNKNOWN_GRACE_S = 60


def _at(seconds: int | float | None) -> datetime:
    return datetime.fromtimestamp(seconds, UTC) if seconds else now()


def _granted(metadata: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The role and customization a participant joined with. At join LiveKit's participant metadata
    is the join token's, which we wrote (and nobody may rewrite their own: rooms.policy); anything
    unexpected still falls back to the least rights."""
    role = metadata.get("role")
    customization = metadata.get("customization")
    return (
        role if isinstance(role, str) and role in ROLES else "STUDENT",
        customization if isinstance(customization, dict) else {},
    )


def ingest(body: str, authorization: str | None) -> WebhookAck:
    """Handle one signed LiveKit webhook (an unsigned or altered one is 401)."""
    event = lk.receive_webhook(body, authorization)
    event_id = event.id or ""
    if not event_id:
        import hashlib

        event_id = "body-" + hashlib.sha256(body.encode()).hexdigest()
    settings = live_settings()
    ttl, lease = timedelta(seconds=settings.webhook_event_ttl_s), timedelta(seconds=settings.webhook_lease_s)
    claim = hook_store.claim_event(event_id, now(), ttl, lease)
    if claim == "done":
        return WebhookAck(event_id=event_id, event=event.event, duplicate=True)
    if claim == "busy":
        raise ServiceUnavailable("This webhook is being handled; retry shortly.")
    try:
        HANDLERS.get(event.event, _ignored)(event, event_id)
    except BaseException:
        hook_store.release_event(event_id)  # let LiveKit's retry handle it again
        raise
    hook_store.event_done(event_id)
    return WebhookAck(event_id=event_id, event=event.event)


def _ignored(event: lk.Notice, event_id: str) -> None:
    logger.info("livekit.webhook_ignored", extra={"event": event.event, "event_id": event_id})


def _room(event: lk.Notice) -> records.Room | None:
    name = event.room_name
    room = store.room_by_livekit_name(name) if name else None
    if room is None:
        if OUR_NAME.match(name) and now().timestamp() - (event.created_at or 0) < UNKNOWN_GRACE_S:
            # LiveKit announces a room as soon as it exists, which can beat our own write of it by
            # a moment: answer 503 so LiveKit delivers it again, instead of losing the event.
            raise ServiceUnavailable("This room is not known yet; retry shortly.")
        logger.info("livekit.webhook_unknown_room", extra={"event": event.event})
    return room


def _room_started(event: lk.Notice, event_id: str) -> None:
    room = _room(event)
    if room is None:
        return
    started = _at(event.room_created_at or event.created_at)
    store.mark_started(room, started)
    events.publish(
        "room.started",
        room.org_id,
        {"roomId": room.room_id, "sid": room.sid, "startedAt": started.isoformat()},
        event_id=event_id,
    )


def _person(event: lk.Notice) -> lk.Person | None:
    """The person who joined or left (not a recorder, ingress or agent, which are neither billed nor
    counted), or None."""
    p = event.participant
    return p if p is not None and p.is_standard else None


def _session_id(room: records.Room, event: lk.Notice) -> str:
    return f"{room.sid}:{event.participant_sid}"


def new_session(
    room: records.Room,
    session_id: str,
    p: lk.Person,
    joined_at: datetime,
    opened_by: Literal["sweep"] | None = None,
) -> records.Session:
    """The session of a person who joined `room`, with the role and customization they joined with."""
    role, customization = _granted(p.metadata)
    return records.Session(
        id=session_id,
        org_id=room.org_id,
        room_id=room.room_id,
        lk_room=room.lk_name,
        uid=p.identity,
        name=p.name,
        role=role,
        customization=customization,
        joined_at=joined_at,
        opened_by=opened_by,
    )


def _turned_away(room: records.Room, p: lk.Person, connection: str) -> bool:
    """Whether this connection of `p` is refused: they were removed from the room (and not readmitted
    by a new token since, grant_store.record_grant) and it is not one the removal itself disconnected.
    Whoever was removed is disconnected from LiveKit at once, whatever the connection; a refused one
    gets no session, so it is neither billed nor counted nor announced (no `participant.joined`, and
    no `participant.left` when LiveKit reports them gone). A connection the removal disconnected was
    in class before it (its webhook came late): it is kept, and billed, as usual."""
    removal = grant_store.removal(room.org_id, room.room_id, p.identity)
    if removal is None:
        return False
    lk.remove_participant(room.lk_name, p.identity, gone_ok=True)
    if connection in removal.connections:
        return False
    logger.info("rooms.removed_participant_turned_away", extra={"room_id": room.room_id, "uid": p.identity})
    return True


def _participant_joined(event: lk.Notice, event_id: str) -> None:
    room = _room(event)
    p = _person(event)
    if room is None or p is None:
        return
    if _turned_away(room, p, event.participant_sid):
        return  # writes nothing: a redelivery disconnects them again, if anything
    joined = p.joined_at or _at(event.created_at)
    session_id = _session_id(room, event)
    session = new_session(room, session_id, p, joined)
    created = session_store.open_session(session)
    if room.started_at is None:
        store.mark_started(room, joined)
    existing = None if created else session_store.get_session(session_id)
    if existing is not None and existing.opened_by == "sweep":
        return  # a late delivery: the rooms sweep found the participant in LiveKit and announced it
    events.publish(
        "participant.joined",
        room.org_id,
        {
            "roomId": room.room_id,
            "uid": p.identity,
            "name": p.name,
            "role": session.role,
            "joinedAt": joined.isoformat(),
        },
        event_id=event_id,
    )


def _meter(
    room: records.Room | records.Session, session_id: str, left_at: datetime
) -> records.Session | None:
    """Close the session (if open) and charge its minutes, once per session whatever the retries
    (`room` needs only org_id and room_id)."""
    session = session_store.close_session(session_id, left_at) or session_store.get_session(session_id)
    if session is None or session.left_at is None:
        return None
    # Imported here, not at the top: only this webhook step needs the ledger (see rooms.lifecycle).
    from verriflo import ledger, pricing

    minutes = Decimal(str(session.seconds)) / Decimal(60)
    ledger.record_usage(
        ledger.UsageEvent(
            entry_id=f"live:{session_id}",
            org_id=room.org_id,
            service="live",
            credits=pricing.live_minutes(minutes),
            quantity=float(round(minutes, 4)),
            unit="participant-minute",
            room_id=room.room_id,
            # billing reports usage per student; teachers are the org's own
            student_id=session.uid if session.role == "STUDENT" else None,
            meta={"uid": session.uid, "seconds": session.seconds},
            occurred_at=session.left_at,
        )
    )
    session_store.charged(session_id)
    return session


def settle_charges(older_than_s: float = 60) -> int:
    """Record the charges of sessions closed more than `older_than_s` ago whose attempt died before
    charging (the rooms sweep); returns how many."""
    charged = 0
    for session in session_store.pending_charges(now() - timedelta(seconds=older_than_s)):
        try:
            _meter(session, session.id, session.left_at)
        except ServiceUnavailable as exc:  # this one waits for the next sweep; the others go on
            logger.warning("rooms.charge_failed", extra={"session_id": session.id, "error": exc.message})
            continue
        charged += 1
    return charged


def _removed_by_room_admin(room: records.Room, p: lk.Person, event: lk.Notice) -> None:
    """A room admin removed this connection (RemoveParticipant; LiveKit signs the reason): our API,
    the turn-away or the sweep, which record the removal before asking LiveKit, or a teacher's
    classroom page, which calls LiveKit with its own token and is known only from here. A student's
    removal is recorded as DELETE .../participants/{uid} records it, once: not if recorded already,
    nor if a token issued after the removal readmitted them (a late or redelivered webhook). The
    order comes from times LiveKit signs: a grant issued by the connection's start (to the
    millisecond) or by the removal's second (`createdAt`) came before the removal; one issued later
    is a readmission. A removed teacher, moderator or admin (our grant's role, not metadata a room
    admin may rewrite) is only disconnected: on the page any room admin, a promoted student too, may
    remove anyone; the org's DELETE keeps anyone out."""
    started = datetime.fromtimestamp(p.joined_at_ms / 1000, UTC) if p.joined_at_ms else p.joined_at
    removed = datetime.fromtimestamp(event.created_at, UTC) if event.created_at else None
    signed = [t for t in (started, removed) if t is not None]
    if not signed:
        return  # nothing to tell the removal from a readmission by
    uid, at, sid = p.identity, removed or now(), event.participant_sid
    if grant_store.mark_removed_if(
        room.org_id, room.room_id, uid, at, sid, role="STUDENT", issued_by=max(signed)
    ):
        logger.info("rooms.room_admin_removal_recorded", extra={"room_id": room.room_id, "uid": uid})


def _participant_left(event: lk.Notice, event_id: str) -> None:
    room = _room(event)
    p = _person(event)
    if room is None or p is None:
        return
    if p.disconnect_reason == "PARTICIPANT_REMOVED":
        _removed_by_room_admin(room, p, event)
    session = _meter(room, _session_id(room, event), _at(event.created_at))
    if session is None or session.closed_by == "sweep":
        return  # (a late delivery: the rooms sweep found them gone from LiveKit and announced it)
    events.publish(
        "participant.left",
        room.org_id,
        {"roomId": room.room_id, "uid": p.identity, "seconds": session.seconds},
        event_id=event_id,
    )


def _room_finished(event: lk.Notice, event_id: str) -> None:
    room = _room(event)
    if room is None:
        return
    ended = _at(event.created_at)
    for session_id in session_store.unsettled_session_ids(room.lk_name):
        _meter(room, session_id, ended)
    store.end_room(
        room.org_id,
        room.room_id,
        ended,
        lifecycle.end_effects(room, ended, "livekit"),
        records.Ending(by="livekit"),
    )
    # Whoever ended the room (this webhook now, an earlier delivery of it, or the API), what the end
    # implies and is not done yet is done here.
    store.carry_out_effects(room)


def _egress(event: lk.Notice, event_id: str) -> None:
    """What LiveKit reports of a recording, taken only for a recording our API started: its record
    (made by rooms.recordings.start_recording) names the bucket and key; the report never does. Anyone
    holding the LiveKit project's roomRecord can start an egress of any room to anywhere."""
    info = event.egress
    if info is None:
        return
    recording = recording_store.get_recording(info.egress_id)
    if recording is None:
        _unknown_egress(event, info)
        return
    status = info.status
    changes: dict[str, Any] = {"status": status}
    if not _where_we_asked(info, recording):
        logger.warning("livekit.egress_elsewhere", extra={"event": event.event, "egress_id": info.egress_id})
        status = "EGRESS_FAILED"
        changes = {"status": status, "error": "The recording was not written where it was asked to be."}
    if event.event == "egress_ended":
        changes["ended_at"] = _at(info.ended_at)
        if info.size is not None and status == "EGRESS_COMPLETE":
            changes |= {"size": info.size, "duration": info.duration_s}
        if info.error:
            changes["error"] = info.error[:500]
    report = records.RecordingReport(**changes)
    recording = recording_store.update_recording(info.egress_id, report) or recording
    org_id, room_id = recording.org_id, recording.room_id
    if event.event == "egress_started":
        events.publish(
            "recording.started", org_id, {"roomId": room_id, "egressId": info.egress_id}, event_id=event_id
        )
    elif event.event == "egress_ended":
        store.release_recording_slot(org_id, room_id, info.egress_id)
        if status == "EGRESS_COMPLETE":
            _recording_ready(recording, report)


def _recording_ready(recording: records.EgressRecording, report: records.RecordingReport) -> None:
    """The MP4 is stored: its video record (which the file's arrival in S3 transcodes; made here or
    there, whichever comes first) and `recording.ready`, once per recording (a fixed event id)."""
    from verriflo import media as media_records

    key, bucket = recording.key or "", recording.bucket or ""
    file_id = media_records.RECORDING_KEY.fullmatch(key)["file"]  # _where_we_asked checked the shape
    video = media_records.ensure_recording(
        recording.org_id, recording.room_id, file_id, bucket, key, egress_id=recording.id
    )
    events.publish(
        "recording.ready",
        recording.org_id,
        {
            "roomId": recording.room_id,
            "egressId": recording.id,
            "videoId": video.id,
            "size": report.size,
            "duration": report.duration,
        },
        event_id=f"recording.ready.{recording.id}",
    )


def _where_we_asked(info: lk.EgressReport, recording: records.EgressRecording) -> bool:
    """The egress writes to our record's location, and that is a recordings location of its room."""
    from verriflo import media as media_records

    key, bucket = recording.key, recording.bucket
    if not media_records.recording_location(recording.org_id, recording.room_id, bucket, key):
        return False
    return all(o_key == key and o_bucket == bucket for o_bucket, o_key in info.outputs)


def _unknown_egress(event: lk.Notice, info: lk.EgressReport) -> None:
    """An egress we have no record of: not one of ours, unless our start call has not stored it yet."""
    room = store.room_by_livekit_name(info.room_name) if info.room_name else None
    if room is not None and now().timestamp() - (event.created_at or 0) < UNKNOWN_GRACE_S:
        # LiveKit can report a recording before the start call that asked for it has stored it:
        # answer 503 so LiveKit delivers it again, instead of taking LiveKit's word for what it is.
        raise ServiceUnavailable("This recording is not known yet; retry shortly.")
    logger.info("livekit.webhook_unknown_egress", extra={"event": event.event, "egress_id": info.egress_id})


HANDLERS = {
    "room_started": _room_started,
    "room_finished": _room_finished,
    "participant_joined": _participant_joined,
    "participant_left": _participant_left,
    "egress_started": _egress,
    "egress_updated": _egress,
    "egress_ended": _egress,
}
