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

import json
from datetime import datetime, timedelta
from typing import Any

from verriflo import outbox
from verriflo.errors import ServiceUnavailable
from verriflo.observability import logger
from verriflo.orgs import now

from rooms import lk, store, webhooks
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
            logger.warning("rooms.reconcile_failed", extra={"room_id": room["roomId"], "error": exc.message})
            continue
        done["joined"] += joined
        done["left"] += left
    return done


def _room(room: dict[str, Any], at: datetime, cutoff: datetime) -> tuple[int, int]:
    people = {p.sid: p for p in lk.list_participants(room["lkName"]) if p.is_standard and p.sid}
    sessions = store.open_sessions_in(room["lkName"])
    prefix = f"{room['sid']}:"
    store.seen([sid for sid in sessions if sid.removeprefix(prefix) in people], at)
    joined = sum(
        _joined(room, prefix + sid, person)
        for sid, person in people.items()
        if prefix + sid not in sessions and person.joined_at is not None and person.joined_at <= cutoff
    )
    left = sum(
        _left(room, session_id, session, cutoff)
        for session_id, session in sessions.items()
        if session_id.removeprefix(prefix) not in people
    )
    # Effects a sweep recorded and did not finish (it died, or the bus failed) are drained by
    # outbox.sweep(SESSIONS) in the sweep handler.
    store.reconciled(room["_id"], at)
    return joined, left


def _joined(room: dict[str, Any], session_id: str, person: lk.Person) -> int:
    if store.get_session(session_id) is not None:
        return 0  # closed already (a participant who rejoins gets a new sid)
    role, customization = webhooks._granted(json.dumps(person.metadata))
    joined_at = person.joined_at or now()
    event = outbox.event(
        "participant.joined",
        room["orgId"],
        {
            "roomId": room["roomId"],
            "uid": person.identity,
            "name": person.name,
            "role": role,
            "joinedAt": joined_at.isoformat(),
        },
        event_id=f"sweep.joined.{session_id}",
    )
    doc = {
        "_id": session_id,
        "orgId": room["orgId"],
        "roomId": room["roomId"],
        "lkRoom": room["lkName"],
        "uid": person.identity,
        "name": person.name,
        "role": role,
        "customization": customization,
        "joinedAt": joined_at,
        "leftAt": None,
        "seconds": None,
        "openedBy": "sweep",
    }
    # The session and its participant.joined are recorded in one insert (verriflo.outbox's fields).
    if not store.open_session(doc | {outbox.FIELD: [event], outbox.SINCE: now()}):
        return 0  # a late webhook opened it meanwhile (and announced it)
    logger.info("rooms.reconciled_join", extra={"session_id": session_id})
    outbox.drain(store.SESSIONS, session_id)
    return 1


def _left(room: dict[str, Any], session_id: str, session: dict[str, Any], cutoff: datetime) -> int:
    last = session.get("seenAt") or session["joinedAt"]
    if last > cutoff:
        return 0  # gone only a moment ago: LiveKit's own webhook may still be on its way
    seconds = max(0.0, (last - session["joinedAt"]).total_seconds())
    event = outbox.event(
        "participant.left",
        room["orgId"],
        {"roomId": room["roomId"], "uid": session["uid"], "seconds": seconds},
        event_id=f"sweep.left.{session_id}",
    )
    closed = store.close_session(session_id, last, extra={"closedBy": "sweep"}, effects=[event])
    if closed is None:
        return 0  # a late webhook closed it meanwhile (and announced it)
    logger.info("rooms.reconciled_leave", extra={"session_id": session_id})
    webhooks._meter(room, session_id, last)  # the charge, once (a failure: settle_charges retries)
    outbox.drain(store.SESSIONS, session_id)
    return 1
