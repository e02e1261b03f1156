"""MongoDB access for classrooms: rooms (tombstones kept forever, with the outbox of their end),
participant sessions, recordings and the LiveKit webhook ids being or already handled. Every query
names the org."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from verriflo import db, outbox
from verriflo.errors import Conflict

ROOMS, SESSIONS, RECORDINGS, HOOKS = "rooms", "room_sessions", "recordings", "livekit_events"
TEACHING = ["TEACHER", "MODERATOR", "ADMIN"]
FINAL = ["EGRESS_COMPLETE", "EGRESS_FAILED", "EGRESS_ABORTED", "EGRESS_LIMIT_REACHED", "DELETED"]


def _room_indexes():
    from pymongo import ASCENDING, IndexModel

    # (orgId, roomId) unique and never deleted: a roomId can never be reused, even after destroy.
    return [
        IndexModel([("orgId", ASCENDING), ("roomId", ASCENDING)], unique=True),
        IndexModel([("lkName", ASCENDING)], unique=True),
    ]


def _session_indexes():
    from pymongo import ASCENDING, IndexModel

    return [
        IndexModel([("orgId", ASCENDING), ("roomId", ASCENDING), ("leftAt", ASCENDING)]),
        IndexModel([("lkRoom", ASCENDING), ("leftAt", ASCENDING)]),
        IndexModel([("chargePending", ASCENDING)], sparse=True),
    ]


def _recording_indexes():
    from pymongo import ASCENDING, DESCENDING, IndexModel

    return [
        IndexModel([("orgId", ASCENDING), ("roomId", ASCENDING), ("startedAt", DESCENDING)]),
        IndexModel([("purgeAt", ASCENDING)], expireAfterSeconds=0),
    ]


def _hook_indexes():
    from pymongo import ASCENDING, IndexModel

    return [IndexModel([("expireAt", ASCENDING)], expireAfterSeconds=0)]


db.register_indexes(ROOMS, _room_indexes)
db.register_indexes(ROOMS, outbox.indexes)
db.register_indexes(SESSIONS, _session_indexes)
db.register_indexes(SESSIONS, outbox.indexes)  # sessions the rooms sweep opened or closed
db.register_indexes(RECORDINGS, _recording_indexes)
db.register_indexes(HOOKS, _hook_indexes)


# --- rooms ----------------------------------------------------------------------------------------


def find_room(org_id: str, room_id: str) -> dict[str, Any] | None:
    """The org's room `room_id` (live or ended), or None."""
    with db.unavailable_on_failure():
        return db.collection(ROOMS).find_one({"orgId": org_id, "roomId": room_id})


def room_by_livekit_name(name: str) -> dict[str, Any] | None:
    """The room LiveKit knows as `name` (webhooks name rooms this way)."""
    with db.unavailable_on_failure():
        return db.collection(ROOMS).find_one({"lkName": name})


def insert_room(doc: dict[str, Any]) -> None:
    """Store a new room; Conflict if the org ever used its roomId."""
    from pymongo.errors import DuplicateKeyError

    with db.unavailable_on_failure():
        try:
            db.collection(ROOMS).insert_one(doc)
        except DuplicateKeyError as exc:
            raise Conflict("This roomId was already used.") from exc


def end_room(
    org_id: str,
    room_id: str,
    ended_at: datetime,
    effects: list[dict[str, Any]] | None = None,
    ended: dict[str, Any] | None = None,
) -> dict[str, Any] | None:
    """Mark the room ended if it was not, recording in the same update the side effects the end
    implies (verriflo.outbox) and how it ended; returns the room as it was, or None if already ended."""
    update = {"$set": {"status": "ended", "endedAt": ended_at, "activeEgressId": None, "ended": ended or {}}}
    with db.unavailable_on_failure():
        return db.collection(ROOMS).find_one_and_update(
            {"orgId": org_id, "roomId": room_id, "status": {"$ne": "ended"}},
            outbox.with_effects(update, effects or []),
        )


def mark_started(room_key: Any, started_at: datetime) -> None:
    """Record when the class really started (first webhook), once."""
    with db.unavailable_on_failure():
        db.collection(ROOMS).update_one(
            {"_id": room_key, "startedAt": None}, {"$set": {"startedAt": started_at}}
        )


def claim_recording_slot(org_id: str, room_id: str, egress_id: str) -> bool:
    """Make `egress_id` the room's active recording unless another one is running."""
    with db.unavailable_on_failure():
        result = db.collection(ROOMS).update_one(
            {"orgId": org_id, "roomId": room_id, "status": {"$ne": "ended"}, "activeEgressId": None},
            {"$set": {"activeEgressId": egress_id}},
        )
    return result.modified_count == 1


def release_recording_slot(org_id: str, room_id: str, egress_id: str) -> None:
    """Forget the active recording if it is `egress_id`."""
    with db.unavailable_on_failure():
        db.collection(ROOMS).update_one(
            {"orgId": org_id, "roomId": room_id, "activeEgressId": egress_id},
            {"$set": {"activeEgressId": None}},
        )


# --- participant sessions -------------------------------------------------------------------------


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


def open_sessions(org_id: str, room_id: str, uid: str | None = None) -> dict[str, dict[str, Any]]:
    """The open session of each connected participant (or of `uid`), by uid: the role and
    customization our join token gave them (or a role change since), never what a client wrote."""
    query: dict[str, Any] = {"orgId": org_id, "roomId": room_id, "leftAt": None}
    if uid is not None:
        query["uid"] = uid
    fields = {"uid": 1, "role": 1, "customization": 1, "joinedAt": 1}
    with db.unavailable_on_failure():
        found = db.collection(SESSIONS).find(query, fields).sort("joinedAt", 1)
        return {doc["uid"]: doc for doc in found}  # the latest session of a uid wins


def set_session_role(org_id: str, room_id: str, uid: str, role: str) -> None:
    """Follow a role change of a connected participant."""
    with db.unavailable_on_failure():
        db.collection(SESSIONS).update_many(
            {"orgId": org_id, "roomId": room_id, "uid": uid, "leftAt": None}, {"$set": {"role": role}}
        )


def get_session(session_id: str) -> dict[str, Any] | None:
    """One participant session."""
    with db.unavailable_on_failure():
        return db.collection(SESSIONS).find_one({"_id": session_id})


def open_session(doc: dict[str, Any]) -> bool:
    """Record a participant joining; False if this session was already recorded."""
    from pymongo.errors import DuplicateKeyError

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
    extra: dict[str, Any] | None = None,
    effects: list[dict[str, Any]] | None = None,
) -> dict[str, Any] | None:
    """Close an open session; returns it (with its duration) or None if it was closed already.
    The close marks its charge pending in the same update (`charged` clears it): a charge that
    failed after the close is found again by `unsettled_session_ids` and `pending_charges`.
    `extra` fields and outbox `effects` are recorded in the same update."""
    from pymongo import ReturnDocument

    with db.unavailable_on_failure():
        sessions = db.collection(SESSIONS)
        doc = sessions.find_one({"_id": session_id, "leftAt": None})
        if doc is None:
            return None
        seconds = max(0.0, (left_at - doc["joinedAt"]).total_seconds())
        closing = {"leftAt": left_at, "seconds": seconds, "chargePending": True} | (extra or {})
        return sessions.find_one_and_update(
            {"_id": session_id, "leftAt": None},
            outbox.with_effects({"$set": closing}, effects or []),
            return_document=ReturnDocument.AFTER,
        )


def live_rooms(limit: int = 200) -> list[dict[str, Any]]:
    """Rooms not ended (every org's), least recently reconciled first: the rooms sweep's round."""
    fields = {"orgId": 1, "roomId": 1, "sid": 1, "lkName": 1}
    with db.unavailable_on_failure():
        found = db.collection(ROOMS).find({"status": {"$ne": "ended"}}, fields).sort("reconciledAt", 1)
        return list(found.limit(limit))


def reconciled(room_key: Any, at: datetime) -> None:
    """The rooms sweep compared this room with LiveKit at `at`."""
    with db.unavailable_on_failure():
        db.collection(ROOMS).update_one({"_id": room_key}, {"$set": {"reconciledAt": at}})


def open_sessions_in(lk_room: str) -> dict[str, dict[str, Any]]:
    """The open sessions of a LiveKit room, by session id."""
    with db.unavailable_on_failure():
        return {d["_id"]: d for d in db.collection(SESSIONS).find({"lkRoom": lk_room, "leftAt": None})}


def seen(session_ids: list[str], at: datetime) -> None:
    """LiveKit listed these sessions' participants as connected at `at`."""
    if session_ids:
        with db.unavailable_on_failure():
            db.collection(SESSIONS).update_many(
                {"_id": {"$in": session_ids}, "leftAt": None}, {"$set": {"seenAt": at}}
            )


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


def pending_charges(before: datetime, limit: int = 200) -> list[dict[str, Any]]:
    """Sessions closed before `before` whose charge was never recorded (the attempt died)."""
    with db.unavailable_on_failure():
        return list(
            db.collection(SESSIONS).find({"chargePending": True, "leftAt": {"$lte": before}}).limit(limit)
        )


def sessions_of(org_id: str, room_id: str) -> list[dict[str, Any]]:
    """Every session of the room (a class has at most a few thousand)."""
    with db.unavailable_on_failure():
        return list(
            db.collection(SESSIONS).find(
                {"orgId": org_id, "roomId": room_id}, {"uid": 1, "joinedAt": 1, "leftAt": 1, "seconds": 1}
            )
        )


def room_credits_milli(org_id: str, room_id: str) -> int:
    """Milli-credits the ledger holds for this room's live usage."""
    from verriflo.ledger import LEDGER  # here: importing the ledger costs every cold start (rooms.logic)

    with db.unavailable_on_failure():
        rows = list(
            db.collection(LEDGER).aggregate(
                [
                    {"$match": {"orgId": org_id, "roomId": room_id, "service": "live", "kind": "debit"}},
                    {"$group": {"_id": None, "milli": {"$sum": "$amountMilli"}}},
                ]
            )
        )
    return int(rows[0]["milli"]) if rows else 0


# --- recordings -----------------------------------------------------------------------------------


def insert_recording(doc: dict[str, Any]) -> None:
    """Store a recording our API just started (the only way a recording record comes to be)."""
    with db.unavailable_on_failure():
        db.collection(RECORDINGS).insert_one(doc)


def update_recording(egress_id: str, changes: dict[str, Any]) -> dict[str, Any] | None:
    """Apply what LiveKit reported about one of our recordings; returns it as it is now (None if we
    never started it)."""
    from pymongo import ReturnDocument

    query: dict[str, Any] = {"_id": egress_id}
    if changes.get("status") not in FINAL:
        # Reports can arrive late or twice: a finished recording never goes back to "active".
        query["status"] = {"$nin": FINAL}
    with db.unavailable_on_failure():
        coll = db.collection(RECORDINGS)
        found = coll.find_one_and_update(query, {"$set": changes}, return_document=ReturnDocument.AFTER)
        return found or coll.find_one({"_id": egress_id})


def get_recording(egress_id: str) -> dict[str, Any] | None:
    """The recording our API started as egress `egress_id` (LiveKit's webhooks name only the egress)."""
    with db.unavailable_on_failure():
        return db.collection(RECORDINGS).find_one({"_id": egress_id})


def recordings_of(org_id: str, room_id: str) -> list[dict[str, Any]]:
    """The room's recordings, newest first."""
    with db.unavailable_on_failure():
        return list(
            db.collection(RECORDINGS).find({"orgId": org_id, "roomId": room_id}).sort("startedAt", -1)
        )


def find_recording(org_id: str, room_id: str, egress_id: str) -> dict[str, Any] | None:
    """One recording of the org's room, or None."""
    with db.unavailable_on_failure():
        return db.collection(RECORDINGS).find_one({"_id": egress_id, "orgId": org_id, "roomId": room_id})


def schedule_recording_deletion(org_id: str, room_id: str, at: datetime) -> None:
    """Record when the room's recording files go (the transcoder's retention sweep deletes them);
    our records stay listed, no longer downloadable, for a month, then the TTL index removes them."""
    with db.unavailable_on_failure():
        db.collection(RECORDINGS).update_many(
            {"orgId": org_id, "roomId": room_id},
            {"$set": {"deleteAt": at, "purgeAt": at + timedelta(days=30)}},
        )


# --- webhook ids ----------------------------------------------------------------------------------


def claim_event(event_id: str, now: datetime, ttl: timedelta, lease: timedelta) -> str:
    """Take a webhook id for handling, for `lease`: "claimed" (never handled, released, or its lease
    ran out: the attempt holding it died), "done" (handled), or "busy" (an attempt holds it now)."""
    from pymongo.errors import DuplicateKeyError

    with db.unavailable_on_failure():
        hooks = db.collection(HOOKS)
        try:
            hooks.insert_one(
                {
                    "_id": event_id,
                    "at": now,
                    "state": "handling",
                    "leaseUntil": now + lease,
                    "expireAt": now + ttl,
                }
            )
            return "claimed"
        except DuplicateKeyError:
            pass
        taken = hooks.find_one_and_update(
            {"_id": event_id, "state": "handling", "leaseUntil": {"$lt": now}},
            {"$set": {"at": now, "leaseUntil": now + lease}},
        )
        if taken is not None:
            return "claimed"
        found = hooks.find_one({"_id": event_id}, {"state": 1})
    if found is None:  # released between our two looks: the next delivery takes it
        return "busy"
    # ids remembered before leases existed carry no state: they were handled
    return "busy" if found.get("state") == "handling" else "done"


def event_done(event_id: str) -> None:
    """Remember a webhook id as handled (for the TTL)."""
    with db.unavailable_on_failure():
        db.collection(HOOKS).update_one(
            {"_id": event_id}, {"$set": {"state": "done"}, "$unset": {"leaseUntil": ""}}
        )


def release_event(event_id: str) -> None:
    """Forget a claimed id whose handling failed, so LiveKit's retry is handled."""
    with db.unavailable_on_failure():
        db.collection(HOOKS).delete_one({"_id": event_id})
