"""MongoDB access for the AI tutor: interactions, per-room tutor settings, class summaries, and the
reads of the rooms function's collections (rooms, participant sessions). Every query names the org.

`tutor_interactions` documents carry what the AI API's usage summary reads (orgId, roomId,
studentUid, inputTokens, outputTokens, createdAt, status) plus the exchange itself.
"""

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from verriflo import db, outbox
from verriflo.errors import NotFound
from verriflo.ledger import LEDGER

from ai_tutor.records import (
    ClassSummary,
    Interaction,
    JoinGrant,
    PastExchange,
    Room,
    RoomTutor,
    RoomUsage,
    SummaryContent,
)

INTERACTIONS, TUTOR_ROOMS, SUMMARIES = "tutor_interactions", "tutor_rooms", "tutor_summaries"
TUTOR_ORGS = "tutor_org_settings"  # the org's defaults for rooms whose teacher set nothing
# owned by the rooms function; read only here
ROOMS, SESSIONS, GRANTS = "rooms", "room_sessions", "room_grants"


def _interaction_indexes():
    from pymongo import ASCENDING, DESCENDING, IndexModel

    return [
        IndexModel([("orgId", ASCENDING), ("roomId", ASCENDING), ("createdAt", DESCENDING)]),
        IndexModel(
            [
                ("orgId", ASCENDING),
                ("roomId", ASCENDING),
                ("studentUid", ASCENDING),
                ("createdAt", DESCENDING),
            ]
        ),
        IndexModel([("orgId", ASCENDING), ("createdAt", DESCENDING)]),
    ]


db.register_indexes(INTERACTIONS, _interaction_indexes)
db.register_indexes(SUMMARIES, outbox.indexes)


def _key(org_id: str, room_id: str) -> str:
    # A roomId holds no ':' (letters, digits, - and _), so the key is unambiguous.
    return f"{org_id}:{room_id}"


def _past(doc: dict[str, Any]) -> PastExchange:
    vector = doc.get("vector")
    return PastExchange(
        id=str(doc["_id"]),
        student_uid=doc["studentUid"],
        question=doc["question"],
        answer=doc.get("answer") or "",
        vector=bytes(vector) if vector else None,
        created_at=doc.get("createdAt"),
        mode=doc.get("mode") or "explain",
    )


# --- the rooms function's records ------------------------------------------------------------------


def find_room(org_id: str, room_id: str) -> Room | None:
    """The org's room (live or ended), or None."""
    with db.unavailable_on_failure():
        doc = db.collection(ROOMS).find_one(
            {"orgId": org_id, "roomId": room_id}, {"roomId": 1, "title": 1, "status": 1, "courseId": 1}
        )
    return Room.model_validate(doc) if doc else None


def course_rooms(org_id: str, course_id: str) -> list[str]:
    """The roomIds of the org's classes of one course (the room API's `courseId`)."""
    with db.unavailable_on_failure():
        return [
            d["roomId"]
            for d in db.collection(ROOMS).find({"orgId": org_id, "courseId": course_id}, {"roomId": 1})
        ]


def connected_role(org_id: str, room_id: str, uid: str) -> str | None:
    """The role of `uid` if connected to the room now (an open session), else None."""
    with db.unavailable_on_failure():
        doc = db.collection(SESSIONS).find_one(
            {"orgId": org_id, "roomId": room_id, "uid": uid, "leftAt": None}, {"role": 1}
        )
    return str(doc.get("role") or "STUDENT") if doc else None


def join_grant(org_id: str, room_id: str, uid: str) -> JoinGrant | None:
    """What the rooms function recorded of the join tokens issued to `uid` for the room, if any."""
    with db.unavailable_on_failure():
        doc = db.collection(GRANTS).find_one({"orgId": org_id, "roomId": room_id, "uid": uid})
    return JoinGrant.model_validate(doc) if doc else None


# --- per-room tutor settings ------------------------------------------------------------------------


def room_settings(org_id: str, room_id: str) -> RoomTutor:
    """The room's tutor settings (all unset when the teacher never changed anything)."""
    with db.unavailable_on_failure():
        doc = db.collection(TUTOR_ROOMS).find_one({"_id": _key(org_id, room_id)})
    return RoomTutor.model_validate(doc or {})


def update_room_settings(
    org_id: str,
    room_id: str,
    at: datetime,
    *,
    enabled: bool | None = None,
    mode: str | None = None,
    topic: str | None = None,
    clear_topic: bool = False,
) -> RoomTutor:
    """Apply the given changes (None: unchanged; `clear_topic` unsets the topic) to the room's tutor
    settings, created on first change; returns them as now stored."""
    changes = _settings_changes(at, enabled, mode, topic, clear_topic)
    return _update_settings(TUTOR_ROOMS, _key(org_id, room_id), {"orgId": org_id, "roomId": room_id}, changes)


def org_settings(org_id: str) -> RoomTutor:
    """The org's tutor defaults (all unset when nobody set them)."""
    with db.unavailable_on_failure():
        doc = db.collection(TUTOR_ORGS).find_one({"_id": org_id})
    return RoomTutor.model_validate(doc or {})


def update_org_settings(
    org_id: str,
    at: datetime,
    *,
    enabled: bool | None = None,
    mode: str | None = None,
    topic: str | None = None,
    clear_topic: bool = False,
) -> RoomTutor:
    """As `update_room_settings`, for the org's defaults."""
    changes = _settings_changes(at, enabled, mode, topic, clear_topic)
    return _update_settings(TUTOR_ORGS, org_id, {"orgId": org_id}, changes)


def _settings_changes(
    at: datetime, enabled: bool | None, mode: str | None, topic: str | None, clear_topic: bool
) -> dict[str, Any]:
    changes: dict[str, Any] = {"updatedAt": at}
    for name, value in (("enabled", enabled), ("mode", mode), ("topic", topic)):
        if value is not None:
            changes[name] = value
    if clear_topic:
        changes["topic"] = None
    return changes


def _update_settings(name: str, key: str, on_insert: dict[str, Any], changes: dict[str, Any]) -> RoomTutor:
    from pymongo import ReturnDocument

    with db.unavailable_on_failure():
        doc = db.collection(name).find_one_and_update(
            {"_id": key},
            {"$set": changes, "$setOnInsert": on_insert},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
    return RoomTutor.model_validate(doc or {})


def claim_knowledge_base(org_id: str, room_id: str, kb_id: str) -> str:
    """Make `kb_id` the room's material base unless one is already set; returns the base in use."""
    from pymongo.errors import DuplicateKeyError

    key = _key(org_id, room_id)
    with db.unavailable_on_failure():
        coll = db.collection(TUTOR_ROOMS)
        try:
            coll.insert_one({"_id": key, "orgId": org_id, "roomId": room_id, "kbId": kb_id})
            return kb_id
        except DuplicateKeyError:
            pass
        coll.update_one({"_id": key, "kbId": {"$in": [None]}}, {"$set": {"kbId": kb_id}})
        doc = coll.find_one({"_id": key}, {"kbId": 1}) or {}
    return str(doc.get("kbId") or kb_id)


def set_material_kind(org_id: str, room_id: str, document_id: str, kind: str) -> None:
    """Remember whether a document is notes or slides."""
    with db.unavailable_on_failure():
        db.collection(TUTOR_ROOMS).update_one(
            {"_id": _key(org_id, room_id)}, {"$set": {f"materialKinds.{document_id}": kind}}
        )


# --- interactions -----------------------------------------------------------------------------------


def insert_interaction(interaction: Interaction) -> None:
    """Store one exchange (its id is the request's, so a retried write cannot count twice)."""
    from bson import Binary
    from pymongo.errors import DuplicateKeyError

    doc = interaction.model_dump(by_alias=True, exclude={"vector"}, exclude_none=False)
    doc["vector"] = Binary(interaction.vector) if interaction.vector is not None else None
    if interaction.error is None:
        del doc["error"]  # a completed exchange has no error field
    with db.unavailable_on_failure():
        try:
            db.collection(INTERACTIONS).insert_one(doc)
        except DuplicateKeyError:
            pass


_PUBLIC = {"vector": 0}


def interactions(
    org_id: str,
    room_id: str,
    *,
    student_uid: str | None = None,
    limit: int = 100,
    before: datetime | None = None,
) -> list[Interaction]:
    """The room's exchanges, newest first (optionally one student's, older than `before`)."""
    query: dict[str, Any] = {"orgId": org_id, "roomId": room_id}
    if student_uid is not None:
        query["studentUid"] = student_uid
    if before is not None:
        query["createdAt"] = {"$lt": before}
    with db.unavailable_on_failure():
        docs = list(db.collection(INTERACTIONS).find(query, _PUBLIC).sort("createdAt", -1).limit(limit))
    return [Interaction.model_validate(d) for d in docs]


def recent_completed(org_id: str, room_id: str, limit: int) -> list[PastExchange]:
    """The room's latest completed exchanges with their question vectors, newest first."""
    with db.unavailable_on_failure():
        docs = list(
            db.collection(INTERACTIONS)
            .find(
                {"orgId": org_id, "roomId": room_id, "status": "completed"},
                {"question": 1, "answer": 1, "studentUid": 1, "vector": 1, "mode": 1},
            )
            .sort("createdAt", -1)
            .limit(limit)
        )
    return [_past(d) for d in docs]


def iter_completed(org_id: str, room_id: str, *, with_vectors: bool = True) -> Iterator[PastExchange]:
    """Every completed exchange of the room, oldest first (summaries and earlier-exchange lookups)."""
    fields = {"question": 1, "answer": 1, "studentUid": 1, "createdAt": 1}
    if with_vectors:
        fields["vector"] = 1
    with db.unavailable_on_failure():
        yield from (
            _past(d)
            for d in db.collection(INTERACTIONS)
            .find({"orgId": org_id, "roomId": room_id, "status": "completed"}, fields, batch_size=2000)
            .sort("createdAt", 1)
        )


def room_usage(org_id: str, room_id: str) -> RoomUsage:
    """Exchanges, students and tokens of the room, and the credits the ledger charged for them."""
    pipeline = [
        {"$match": {"orgId": org_id, "roomId": room_id}},
        {
            "$group": {
                "_id": None,
                "interactions": {"$sum": 1},
                "students": {"$addToSet": "$studentUid"},
                "inputTokens": {"$sum": "$inputTokens"},
                "outputTokens": {"$sum": "$outputTokens"},
                "failed": {"$sum": {"$cond": [{"$eq": ["$status", "failed"]}, 1, 0]}},
            }
        },
    ]
    charged = [
        {"$match": {"orgId": org_id, "roomId": room_id, "service": "ai_tutor", "kind": "debit"}},
        {"$group": {"_id": None, "milli": {"$sum": "$amountMilli"}}},
    ]
    with db.unavailable_on_failure():
        rows = list(db.collection(INTERACTIONS).aggregate(pipeline))
        paid = list(db.collection(LEDGER).aggregate(charged))
    credits_milli = int(paid[0]["milli"]) if paid else 0
    if not rows:
        return RoomUsage(credits_milli=credits_milli)
    row = rows[0]
    return RoomUsage(
        interactions=row["interactions"],
        students=len(row["students"]),
        input_tokens=row["inputTokens"],
        output_tokens=row["outputTokens"],
        failed=row["failed"],
        credits_milli=credits_milli,
    )


# --- summaries --------------------------------------------------------------------------------------


def get_summary(org_id: str, room_id: str) -> ClassSummary | None:
    """The room's summary record (any state), or None."""
    with db.unavailable_on_failure():
        doc = db.collection(SUMMARIES).find_one({"_id": _key(org_id, room_id)})
    return ClassSummary.model_validate(doc) if doc else None


def claim_summary(org_id: str, room_id: str, run_id: str, at: datetime) -> ClassSummary:
    """Start (or take over) the room's summary unless it is ready; returns the record as it is now.

    One record per room is the idempotency guard: a second run for the same room finds it `ready`
    and stops, so a class has one summary and one `summary.ready` however often it is started.
    """
    from pymongo import ReturnDocument
    from pymongo.errors import DuplicateKeyError

    key = _key(org_id, room_id)
    with db.unavailable_on_failure():
        coll = db.collection(SUMMARIES)
        try:
            coll.insert_one(
                {
                    "_id": key,
                    "orgId": org_id,
                    "roomId": room_id,
                    "status": "running",
                    "runId": run_id,
                    "startedAt": at,
                    "attempts": 1,
                }
            )
        except DuplicateKeyError:
            taken = coll.find_one_and_update(
                {"_id": key, "status": {"$ne": "ready"}},
                {
                    "$set": {"status": "running", "runId": run_id, "startedAt": at, "error": None},
                    "$inc": {"attempts": 1},
                },
                return_document=ReturnDocument.AFTER,
            )
            doc = taken or coll.find_one({"_id": key})
        else:
            doc = coll.find_one({"_id": key})
    return ClassSummary.model_validate(doc or {"status": "running"})


def complete_summary(
    org_id: str,
    room_id: str,
    run_id: str,
    content: SummaryContent,
    at: datetime,
    effects: list[dict[str, Any]],
) -> bool:
    """Store the summary, with what it implies (`summary.ready`) as pending effects in the same update
    (see verriflo.outbox), if this run still owns the record; False when another run finished first."""
    fields = content.model_dump(mode="json", by_alias=True) | {"createdAt": at, "status": "ready"}
    with db.unavailable_on_failure():
        result = db.collection(SUMMARIES).update_one(
            {"_id": _key(org_id, room_id), "runId": run_id, "status": "running"},
            outbox.with_effects({"$set": fields}, effects),
        )
    return result.modified_count == 1


def drain_summary(org_id: str, room_id: str) -> int:
    """Carry out what the stored summary implies and a step left undone (see verriflo.outbox)."""
    return outbox.drain(SUMMARIES, _key(org_id, room_id))


def summary_pending(org_id: str, room_id: str) -> bool:
    """Whether the room's summary still has effects to carry out."""
    return bool(outbox.pending(SUMMARIES, _key(org_id, room_id)))


def mark_published(org_id: str, room_id: str, event_id: str, at: datetime) -> None:
    """Note that summary.ready went out."""
    with db.unavailable_on_failure():
        db.collection(SUMMARIES).update_one(
            {"_id": _key(org_id, room_id)}, {"$set": {"publishedAt": at, "eventId": event_id}}
        )


def fail_summary(org_id: str, room_id: str, error: str, cause: str, at: datetime) -> None:
    """Record a failed run (a ready summary is never overwritten)."""
    from pymongo.errors import DuplicateKeyError

    with db.unavailable_on_failure():
        try:
            db.collection(SUMMARIES).update_one(
                {"_id": _key(org_id, room_id), "status": {"$ne": "ready"}},
                {
                    "$set": {"status": "failed", "error": error[:200], "cause": cause[:1000], "failedAt": at},
                    "$setOnInsert": {"orgId": org_id, "roomId": room_id},
                },
                upsert=True,
            )
        except DuplicateKeyError:
            pass  # the record exists and is ready: the failure of a late run changes nothing


def require_room(org_id: str, room_id: str) -> Room:
    """The org's room, or NotFound (another org's roomId is simply not found)."""
    room = find_room(org_id, room_id)
    if room is None:
        raise NotFound(f"No room '{room_id}' in this organisation.")
    return room
