"""Participants whose LiveKit webhook was lost for good (LiveKit stopped retrying): the rooms sweep
compares each live room's sessions with LiveKit's own list of who is connected.

- Connected in LiveKit for longer than `reconcile_grace_s`, with no session of ours: the session is
  opened (`openedBy: sweep`) and `participant.joined` recorded with it (verriflo.outbox).
- A session of ours whose participant LiveKit no longer lists, not seen for `reconcile_grace_s`: it
  is closed (`closedBy: sweep`) at the last time a sweep saw them connected (or their join: LiveKit
  does not say when they left, so their minutes end at the last sign of them, never later), charged
  once (the session's ledger entry id) and `participant.left` recorded with the close.

A late webhook for a session the sweep opened or closed publishes nothing more (rooms.webhooks), and
events the sweep records have ids of their own per session, so each is announced once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from verriflo import outbox
from verriflo.errors import ServiceUnavailable
from verriflo.observability import logger
from verriflo.orgs import now

from rooms import lk, records, session_store, store, webhooks
from rooms.config import live_settings


def participants(at: datetime | None = None) -> dict[str, int]:
    """Reconcile every live room with LiveKit; returns how many sessions were opened and closed."""
    at = at or now()
    cutoff = at - timedelta(seconds=live_settings().reconcile_grace_s)
    done = {"joined": 0, "left": 0}
    for room in store.live_rooms():
        try:
            joined, left = _room(room, at, cutoff)
        except ServiceUnavailable as exc:  # LiveKit or MongoDB: this room waits for the next sweep
            logger.warning("rooms.reconcile_failed", extra={"room_id": room.room_id, "error": exc.message})
            continue
        done["joined"] += joined
        done["left"] += left
    return done


def _room(room: records.Room, at: datetime, cutoff: datetime) -> tuple[int, int]:
    people = {p.sid: p for p in lk.list_participants(room.lk_name) if p.is_standard and p.sid}
    sessions = session_store.open_sessions_in(room.lk_name)
    prefix = f"{room.sid}:"
    session_store.seen([sid for sid in sessions if sid.removeprefix(prefix) in people], at)
    joined = sum(
        _joined(room, prefix + sid, person)
        for sid, person in people.items()
        if prefix + sid not in sessions and person.joined_at is not None and person.joined_at <= cutoff
    )
    left = sum(
        _left(room, session, cutoff)
        for session_id, session in sessions.items()
        if session_id.removeprefix(prefix) not in people
    )
    # Effects a sweep recorded and did not finish (it died, or the bus failed) are drained by
    # session_store.sweep_session_effects in the sweep handler.
    store.reconciled(room, at)
    return joined, left


def _joined(room: records.Room, session_id: str, person: lk.Person) -> int:
    if session_store.get_session(session_id) is not None:
        return 0  # closed already (a participant who rejoins gets a new sid)
    joined_at = person.joined_at or now()
    session = webhooks.new_session(room, session_id, person, joined_at, opened_by="sweep")
    event = outbox.event(
        "participant.joined",
        room.org_id,
        {
            "roomId": room.room_id,
            "uid": person.identity,
            "name": person.name,
            "role": session.role,
            "joinedAt": joined_at.isoformat(),
        },
        event_id=f"sweep.joined.{session_id}",
    )
    # The session and its participant.joined are recorded in one insert (verriflo.outbox).
    if not session_store.open_session(session, effects=[event]):
        return 0  # a late webhook opened it meanwhile (and announced it)
    logger.info("rooms.reconciled_join", extra={"session_id": session_id})
    session_store.carry_out_session_effects(session_id)
    return 1


def _left(room: records.Room, session: records.Session, cutoff: datetime) -> int:
    last = session.seen_at or session.joined_at
    if last > cutoff:
        return 0  # gone only a moment ago: LiveKit's own webhook may still be on its way
    seconds = max(0.0, (last - session.joined_at).total_seconds())
    event = outbox.event(
        "participant.left",
        room.org_id,
        {"roomId": room.room_id, "uid": session.uid, "seconds": seconds},
        event_id=f"sweep.left.{session.id}",
    )
    closed = session_store.close_session(session.id, last, closed_by="sweep", effects=[event])
    if closed is None:
        return 0  # a late webhook closed it meanwhile (and announced it)
    logger.info("rooms.reconciled_leave", extra={"session_id": session.id})
    webhooks._meter(room, session.id, last)  # the charge, once (a failure: settle_charges retries)
    session_store.carry_out_session_effects(session.id)
    return 1
