"""MongoDB access for classrooms: the rooms (tombstones kept forever, with the outbox of their end),
their listing and what it counts, and the sweeps over them. Every query names the org (the sweeps'
rounds go over every org's rooms). Records: `rooms.records`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from verriflo import db, outbox
from verriflo.errors import Conflict

from rooms.records import RECORDINGS, ROOMS, SESSIONS, SUMMARIES, Ending, Room, RoomTally


def _room_indexes():
    from pymongo import ASCENDING, DESCENDING, IndexModel

    # (orgId, roomId) unique and never deleted: a roomId can never be reused, even after destroy.
    # The listing (GET /v1/rooms) reads a page newest first through (orgId[, status], createdAt, _id).
    return [
        IndexModel([("orgId", ASCENDING), ("roomId", ASCENDING)], unique=True),
        IndexModel([("lkName", ASCENDING)], unique=True),
        IndexModel([("orgId", ASCENDING), ("createdAt", DESCENDING), ("_id", DESCENDING)]),
        IndexModel(
            [("orgId", ASCENDING), ("status", ASCENDING), ("createdAt", DESCENDING), ("_id", DESCENDING)]
        ),
    ]


db.register_indexes(ROOMS, _room_indexes)
db.register_indexes(ROOMS, outbox.indexes)


def _object_id(key: str) -> Any:
    from bson import ObjectId

    return ObjectId(key) if ObjectId.is_valid(key) else key


def _room(doc: dict[str, Any] | None) -> Room | None:
    return Room.model_validate(doc) if doc else None


def find_room(org_id: str, room_id: str) -> Room | None:
    """The org's room `room_id` (live or ended), or None."""
    with db.unavailable_on_failure():
        return _room(db.collection(ROOMS).find_one({"orgId": org_id, "roomId": room_id}))


def room_by_livekit_name(name: str) -> Room | None:
    """The room LiveKit knows as `name` (webhooks name rooms this way)."""
    with db.unavailable_on_failure():
        return _room(db.collection(ROOMS).find_one({"lkName": name}))


def insert_room(room: Room) -> Room:
    """Store a new room and return it with its key; Conflict if the org ever used its roomId."""
    from pymongo.errors import DuplicateKeyError

    doc = room.model_dump(by_alias=True, exclude={"key"})
    with db.unavailable_on_failure():
        try:
            db.collection(ROOMS).insert_one(doc)
        except DuplicateKeyError as exc:
            raise Conflict("This roomId was already used.") from exc
    return room.model_copy(update={"key": str(doc["_id"])})


def list_rooms(
    org_id: str,
    *,
    status: Literal["open", "ended"] | None,
    created_from: datetime | None,
    created_to: datetime | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> list[Room]:
    """The org's rooms newest first (created in [from, to)), after the room `after` (createdAt, key):
    one indexed query."""
    query: dict[str, Any] = {"orgId": org_id}
    if status is not None:
        query["status"] = status
    created: dict[str, Any] = {}
    if created_from is not None:
        created["$gte"] = created_from
    if created_to is not None:
        created["$lt"] = created_to
    if created:
        query["createdAt"] = created
    if after is not None:
        at, key = after
        oid = _object_id(key)
        query["$or"] = [{"createdAt": {"$lt": at}}, {"createdAt": at, "_id": {"$lt": oid}}]
    with db.unavailable_on_failure():
        found = db.collection(ROOMS).find(query).sort([("createdAt", -1), ("_id", -1)]).limit(limit)
        return [Room.model_validate(d) for d in found]


def tallies(org_id: str, room_ids: list[str]) -> dict[str, RoomTally]:
    """Participants (connected now, distinct ever) and recordings of these rooms: one query each."""
    if not room_ids:
        return {}
    match = {"$match": {"orgId": org_id, "roomId": {"$in": room_ids}}}
    with db.unavailable_on_failure():
        people = db.collection(SESSIONS).aggregate(
            [
                match,
                {
                    "$group": {
                        "_id": "$roomId",
                        "uids": {"$addToSet": "$uid"},
                        "now": {"$sum": {"$cond": [{"$eq": [{"$ifNull": ["$leftAt", None]}, None]}, 1, 0]}},
                    }
                },
            ]
        )
        counted = {r["_id"]: (int(r["now"]), len(r["uids"])) for r in people}
        recorded = db.collection(RECORDINGS).aggregate(
            [match, {"$group": {"_id": "$roomId", "n": {"$sum": 1}}}]
        )
        recordings = {r["_id"]: int(r["n"]) for r in recorded}
    return {
        rid: RoomTally(
            participants_now=counted.get(rid, (0, 0))[0],
            participants_total=counted.get(rid, (0, 0))[1],
            recordings=recordings.get(rid, 0),
        )
        for rid in room_ids
    }


def end_room(
    org_id: str,
    room_id: str,
    ended_at: datetime,
    effects: list[dict[str, Any]] | None = None,
    ended: Ending | None = None,
) -> Room | None:
    """Mark the room ended if it was not, recording in the same update the side effects the end
    implies (verriflo.outbox) and how it ended; returns the room as it was, or None if already ended."""
    how = ended.model_dump(by_alias=True, exclude_unset=True) if ended else {}
    update = {"$set": {"status": "ended", "endedAt": ended_at, "activeEgressId": None, "ended": how}}
    with db.unavailable_on_failure():
        return _room(
            db.collection(ROOMS).find_one_and_update(
                {"orgId": org_id, "roomId": room_id, "status": {"$ne": "ended"}},
                outbox.with_effects(update, effects or []),
            )
        )


def carry_out_effects(room: Room) -> int:
    """Carry out what the room's end implies and is not done yet (verriflo.outbox.drain)."""
    return outbox.drain(ROOMS, _object_id(room.key)) if room.key else 0


def sweep_effects() -> int:
    """Carry out the end effects every interrupted attempt left behind (verriflo.outbox.sweep)."""
    return outbox.sweep(ROOMS)


def mark_started(room: Room, started_at: datetime) -> None:
    """Record when the class really started (first webhook), once."""
    with db.unavailable_on_failure():
        db.collection(ROOMS).update_one(
            {"orgId": room.org_id, "roomId": room.room_id, "startedAt": None},
            {"$set": {"startedAt": started_at}},
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


def live_rooms(limit: int = 200) -> list[Room]:
    """Rooms not ended (every org's), least recently reconciled first: the rooms sweep's round."""
    with db.unavailable_on_failure():
        found = db.collection(ROOMS).find({"status": {"$ne": "ended"}}).sort("reconciledAt", 1)
        return [Room.model_validate(d) for d in found.limit(limit)]


def reconciled(room: Room, at: datetime) -> None:
    """The rooms sweep compared this room with LiveKit at `at`."""
    with db.unavailable_on_failure():
        db.collection(ROOMS).update_one(
            {"orgId": room.org_id, "roomId": room.room_id}, {"$set": {"reconciledAt": at}}
        )


def room_credits_milli(org_id: str, room_ids: list[str]) -> dict[str, dict[str, int]]:
    """Milli-credits the ledger debited for each of these rooms, per service (live minutes, the
    tutor, the recording's transcode, its storage...): one aggregation for all of them."""
    from verriflo.ledger import LEDGER  # here: importing the ledger costs every cold start (rooms.lifecycle)

    if not room_ids:
        return {}
    totals: dict[str, dict[str, int]] = {rid: {} for rid in room_ids}
    with db.unavailable_on_failure():
        rows = db.collection(LEDGER).aggregate(
            [
                # $type: lets the planner use the ledger's partial (orgId, roomId, ...) index
                {
                    "$match": {
                        "orgId": org_id,
                        "roomId": {"$in": room_ids, "$type": "string"},
                        "kind": "debit",
                    }
                },
                {
                    "$group": {
                        "_id": {"room": "$roomId", "service": "$service"},
                        "milli": {"$sum": "$amountMilli"},
                    }
                },
            ]
        )
        for row in rows:
            totals[row["_id"]["room"]][row["_id"]["service"]] = int(row["milli"])
    return totals


def sweep_summary_effects() -> int:
    """Announce the class summaries (ai_tutor's records) whose ClassSummary run stored them and died
    before its Publish step drained `summary.ready` (verriflo.outbox.sweep)."""
    return outbox.sweep(SUMMARIES)
