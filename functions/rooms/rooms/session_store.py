"""MongoDB access for participant sessions: one stay of one participant in a room (keyed by
LiveKit's room and participant sids), its charge, and the outbox of the sessions the rooms sweep
opened or closed. Records: `rooms.records.Session`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from verriflo import db, outbox
from verriflo.orgs import now

from rooms.records import SESSIONS, Session


def _session_indexes():
    from pymongo import ASCENDING, IndexModel

    return [
        IndexModel([("orgId", ASCENDING), ("roomId", ASCENDING), ("leftAt", ASCENDING)]),
        IndexModel([("lkRoom", ASCENDING), ("leftAt", ASCENDING)]),
        IndexModel([("chargePending", ASCENDING)], sparse=True),
    ]


db.register_indexes(SESSIONS, _session_indexes)
db.register_indexes(SESSIONS, outbox.indexes)  # sessions the rooms sweep opened or closed


def connected(
    org_id: str, room_id: str, *, roles: list[str] | None = None, uid: str | None = None, limit: int = 0
) -> int:
    """How many sessions of the room are open now, optionally only of these roles or this uid."""
    query: dict[str, Any] = {"orgId": org_id, "roomId": room_id, "leftAt": None}
    if roles is not None:
        query["role"] = {"$in": roles}
    if uid is not None:
        query["uid"] = uid
    options = {"limit": limit} if limit > 0 else {}
    with db.unavailable_on_failure():
        return db.collection(SESSIONS).count_documents(query, **options)


def open_sessions(org_id: str, room_id: str, uid: str | None = None) -> dict[str, Session]:
    """The open session of each connected participant (or of `uid`), by uid: the role and
    customization our join token gave them (or a role change since), never what a client wrote."""
    query: dict[str, Any] = {"orgId": org_id, "roomId": room_id, "leftAt": None}
    if uid is not None:
        query["uid"] = uid
    with db.unavailable_on_failure():
        found = db.collection(SESSIONS).find(query).sort("joinedAt", 1)
        return {doc["uid"]: Session.model_validate(doc) for doc in found}  # the latest session of a uid wins


def set_session_role(org_id: str, room_id: str, uid: str, role: str) -> None:
    """Follow a role change of a connected participant in their open session (and
    `grant_store.set_role` in the grant of their token)."""
    with db.unavailable_on_failure():
        db.collection(SESSIONS).update_many(
            {"orgId": org_id, "roomId": room_id, "uid": uid, "leftAt": None}, {"$set": {"role": role}}
        )


def get_session(session_id: str) -> Session | None:
    """One participant session."""
    with db.unavailable_on_failure():
        doc = db.collection(SESSIONS).find_one({"_id": session_id})
    return Session.model_validate(doc) if doc else None


def open_session(session: Session, effects: list[dict[str, Any]] | None = None) -> bool:
    """Record a participant joining, with outbox `effects` in the same insert; False if this session
    was already recorded."""
    from pymongo.errors import DuplicateKeyError

    doc = session.model_dump(by_alias=True)
    if effects:
        doc |= {outbox.FIELD: effects, outbox.SINCE: now()}
    with db.unavailable_on_failure():
        try:
            db.collection(SESSIONS).insert_one(doc)
        except DuplicateKeyError:
            return False
    return True


def close_session(
    session_id: str,
    left_at: datetime,
    *,
    closed_by: Literal["sweep"] | None = None,
    effects: list[dict[str, Any]] | None = None,
) -> Session | None:
    """Close an open session; returns it (with its duration) or None if it was closed already.
    The close marks its charge pending in the same update (`charged` clears it): a charge that
    failed after the close is found again by `unsettled_session_ids` and `pending_charges`.
    `closed_by` and outbox `effects` are recorded in the same update."""
    from pymongo import ReturnDocument

    with db.unavailable_on_failure():
        sessions = db.collection(SESSIONS)
        doc = sessions.find_one({"_id": session_id, "leftAt": None})
        if doc is None:
            return None
        seconds = max(0.0, (left_at - doc["joinedAt"]).total_seconds())
        closing = {"leftAt": left_at, "seconds": seconds, "chargePending": True}
        if closed_by:
            closing["closedBy"] = closed_by
        closed = sessions.find_one_and_update(
            {"_id": session_id, "leftAt": None},
            outbox.with_effects({"$set": closing}, effects or []),
            return_document=ReturnDocument.AFTER,
        )
    return Session.model_validate(closed) if closed else None


def open_sessions_in(lk_room: str) -> dict[str, Session]:
    """The open sessions of a LiveKit room, by session id."""
    with db.unavailable_on_failure():
        found = db.collection(SESSIONS).find({"lkRoom": lk_room, "leftAt": None})
        return {d["_id"]: Session.model_validate(d) for d in found}


def seen(session_ids: list[str], at: datetime) -> None:
    """LiveKit listed these sessions' participants as connected at `at`."""
    if session_ids:
        with db.unavailable_on_failure():
            db.collection(SESSIONS).update_many(
                {"_id": {"$in": session_ids}, "leftAt": None}, {"$set": {"seenAt": at}}
            )


def carry_out_session_effects(session_id: str) -> int:
    """Carry out what a session's opening or closing by the sweep implies (verriflo.outbox.drain)."""
    return outbox.drain(SESSIONS, session_id)


def sweep_session_effects() -> int:
    """Carry out the session effects every interrupted sweep left behind (verriflo.outbox.sweep)."""
    return outbox.sweep(SESSIONS)


def unsettled_session_ids(lk_room: str) -> list[str]:
    """Sessions of a LiveKit room still open, or closed with their charge not yet recorded."""
    with db.unavailable_on_failure():
        found = db.collection(SESSIONS).find(
            {"lkRoom": lk_room, "$or": [{"leftAt": None}, {"chargePending": True}]}, {"_id": 1}
        )
        return [d["_id"] for d in found]


def charged(session_id: str) -> None:
    """The session's minutes are in the ledger."""
    with db.unavailable_on_failure():
        db.collection(SESSIONS).update_one({"_id": session_id}, {"$unset": {"chargePending": ""}})


def pending_charges(before: datetime, limit: int = 200) -> list[Session]:
    """Sessions closed before `before` whose charge was never recorded (the attempt died)."""
    with db.unavailable_on_failure():
        found = db.collection(SESSIONS).find({"chargePending": True, "leftAt": {"$lte": before}}).limit(limit)
        return [Session.model_validate(d) for d in found]


def sessions_of(org_id: str, room_id: str) -> list[Session]:
    """Every session of the room (a class has at most a few thousand)."""
    with db.unavailable_on_failure():
        found = db.collection(SESSIONS).find({"orgId": org_id, "roomId": room_id})
        return [Session.model_validate(d) for d in found]
