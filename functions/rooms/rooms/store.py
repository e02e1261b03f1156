"""MongoDB access for classrooms: rooms (tombstones kept forever, with the outbox of their end),
participant sessions, recordings and the LiveKit webhook ids being or already handled. Every query
names the org.

What this module returns and takes are the typed records below (`Room`, `Session`,
`EgressRecording`): no pymongo or bson type leaves it. Their attributes are snake_case; the aliases
are the stored (camelCase) field names.
"""

# No `from __future__ import annotations`: pydantic would evaluate each string annotation as it
# creates every record class below, a cost every cold start pays.

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from verriflo import db, outbox
from verriflo.errors import Conflict
from verriflo.orgs import now

ROOMS, SESSIONS, RECORDINGS, HOOKS = "rooms", "room_sessions", "recordings", "livekit_events"
# The class summaries (ai_tutor's store): `summary.ready` is recorded with the stored summary and
# drained by the ClassSummary's Publish step; a run that died before it is completed by the rooms sweep.
SUMMARIES = "tutor_summaries"
# The join tokens we issued: one record per participant of a room (their latest token) and whether
# they were removed since; the AI tutor admits a STUDENT who holds one, connected or not.
GRANTS = "room_grants"
GRANT_KEPT = timedelta(days=2)  # after the token expires (or the removal), then purged
FINAL = ["EGRESS_COMPLETE", "EGRESS_FAILED", "EGRESS_ABORTED", "EGRESS_LIMIT_REACHED", "DELETED"]


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


def _grant_indexes():
    from pymongo import ASCENDING, IndexModel

    return [
        IndexModel([("orgId", ASCENDING), ("roomId", ASCENDING), ("uid", ASCENDING)], unique=True),
        IndexModel([("purgeAt", ASCENDING)], expireAfterSeconds=0),
    ]


db.register_indexes(GRANTS, _grant_indexes)
db.register_indexes(RECORDINGS, _recording_indexes)
db.register_indexes(HOOKS, _hook_indexes)


# --- records -------------------------------------------------------------------------------------

_RECORD = ConfigDict(defer_build=True, populate_by_name=True)


def _text(value: Any) -> Any:
    return None if value is None else str(value)


# A room's MongoDB `_id` (an ObjectId) as text: only this module turns it back (`_object_id`).
Key = Annotated[str | None, BeforeValidator(_text)]


class Ending(BaseModel):
    """How a class ended: by the API's destroy (with what it found) or by LiveKit closing the room."""

    model_config = _RECORD

    by: Literal["api", "livekit"] | None = None
    participants_disconnected: int = Field(default=0, alias="participantsDisconnected")
    was_recording: bool = Field(default=False, alias="wasRecording")


class Room(BaseModel):
    """A classroom as stored: open, or ended and kept as a tombstone (its roomId is never reused)."""

    model_config = _RECORD

    key: Key = Field(default=None, alias="_id")
    org_id: str = Field(alias="orgId")
    room_id: str = Field(alias="roomId")
    title: str
    course_id: str | None = Field(default=None, alias="courseId")
    lk_name: str = Field(alias="lkName")
    sid: str
    status: Literal["open", "ended"] = "open"
    customization: dict[str, Any] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)
    created_by: str | None = Field(default=None, alias="createdBy")
    created_at: datetime = Field(alias="createdAt")
    started_at: datetime | None = Field(default=None, alias="startedAt")
    ended_at: datetime | None = Field(default=None, alias="endedAt")
    active_egress_id: str | None = Field(default=None, alias="activeEgressId")
    ended: Ending | None = None
    # what its end implies and is not carried out yet (verriflo.outbox writes it; never written here)
    pending_effects: list[dict[str, Any]] = Field(default_factory=list, alias=outbox.FIELD, exclude=True)

    @property
    def is_ended(self) -> bool:
        return self.status == "ended"


class Session(BaseModel):
    """One participant's stay in a room, keyed by LiveKit's room and participant sids."""

    model_config = _RECORD

    id: str = Field(alias="_id")
    org_id: str = Field(alias="orgId")
    room_id: str = Field(alias="roomId")
    lk_room: str = Field(alias="lkRoom")
    uid: str
    name: str = ""
    role: str
    customization: dict[str, Any] = Field(default_factory=dict)
    joined_at: datetime = Field(alias="joinedAt")
    left_at: datetime | None = Field(default=None, alias="leftAt")
    seconds: float | None = None
    # the last time the rooms sweep saw the participant connected in LiveKit (rooms.reconcile)
    seen_at: datetime | None = Field(default=None, alias="seenAt")
    # "sweep" when the rooms sweep opened or closed it because LiveKit's webhook was lost for good
    opened_by: Literal["sweep"] | None = Field(default=None, alias="openedBy")
    closed_by: Literal["sweep"] | None = Field(default=None, alias="closedBy")
    # what its opening or closing implies and is not carried out yet (verriflo.outbox writes it)
    pending_effects: list[dict[str, Any]] = Field(default_factory=list, alias=outbox.FIELD, exclude=True)


class JoinGrant(BaseModel):
    """The latest join token we issued to one participant of a room (not the token itself)."""

    model_config = _RECORD

    org_id: str = Field(alias="orgId")
    room_id: str = Field(alias="roomId")
    uid: str
    role: str
    issued_at: datetime = Field(alias="issuedAt")
    expires_at: datetime = Field(alias="expiresAt")


class EgressRecording(BaseModel):
    """A recording our API started (LiveKit Egress `id`), and what LiveKit reported of it since."""

    model_config = _RECORD

    id: str = Field(alias="_id")
    org_id: str = Field(alias="orgId")
    room_id: str = Field(alias="roomId")
    status: str
    layout: str
    preset: str
    show_logo: bool = Field(default=False, alias="showLogo")
    bucket: str | None = None
    key: str | None = None
    requested_by: str | None = Field(default=None, alias="requestedBy")
    started_at: datetime = Field(alias="startedAt")
    ended_at: datetime | None = Field(default=None, alias="endedAt")
    size: int | None = None
    duration: float | None = None
    error: str | None = None
    delete_at: datetime | None = Field(default=None, alias="deleteAt")


class RecordingReport(BaseModel):
    """What one LiveKit report changes in a recording (fields left None are not reported)."""

    model_config = _RECORD

    status: str
    ended_at: datetime | None = Field(default=None, alias="endedAt")
    size: int | None = None
    duration: float | None = None
    error: str | None = None


def _object_id(key: str) -> Any:
    from bson import ObjectId

    return ObjectId(key) if ObjectId.is_valid(key) else key


def _room(doc: dict[str, Any] | None) -> Room | None:
    return Room.model_validate(doc) if doc else None


# --- rooms ----------------------------------------------------------------------------------------


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


class RoomTally(BaseModel):
    """What the listing shows of one room besides the room itself (from sessions and recordings)."""

    model_config = _RECORD

    participants_now: int = 0
    participants_total: int = 0
    recordings: int = 0


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
    """Follow a role change of a connected participant (their session and the grant of their token)."""
    with db.unavailable_on_failure():
        db.collection(SESSIONS).update_many(
            {"orgId": org_id, "roomId": room_id, "uid": uid, "leftAt": None}, {"$set": {"role": role}}
        )
        db.collection(GRANTS).update_one(
            {"orgId": org_id, "roomId": room_id, "uid": uid}, {"$set": {"role": role}}
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


def sweep_summary_effects() -> int:
    """Announce the class summaries (ai_tutor's records) whose ClassSummary run stored them and died
    before its Publish step drained `summary.ready` (verriflo.outbox.sweep)."""
    return outbox.sweep(SUMMARIES)


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


def room_credits_milli(org_id: str, room_ids: list[str]) -> dict[str, dict[str, int]]:
    """Milli-credits the ledger debited for each of these rooms, per service (live minutes, the
    tutor, the recording's transcode, its storage...): one aggregation for all of them."""
    from verriflo.ledger import LEDGER  # here: importing the ledger costs every cold start (rooms.logic)

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


# --- recordings -----------------------------------------------------------------------------------


def _recording(doc: dict[str, Any] | None) -> EgressRecording | None:
    return EgressRecording.model_validate(doc) if doc else None


def insert_recording(recording: EgressRecording) -> None:
    """Store a recording our API just started (the only way a recording record comes to be)."""
    with db.unavailable_on_failure():
        db.collection(RECORDINGS).insert_one(recording.model_dump(by_alias=True))


def update_recording(egress_id: str, report: RecordingReport) -> EgressRecording | None:
    """Apply what LiveKit reported about one of our recordings; returns it as it is now (None if we
    never started it)."""
    from pymongo import ReturnDocument

    query: dict[str, Any] = {"_id": egress_id}
    if report.status not in FINAL:
        # Reports can arrive late or twice: a finished recording never goes back to "active".
        query["status"] = {"$nin": FINAL}
    changes = report.model_dump(by_alias=True, exclude_unset=True)
    with db.unavailable_on_failure():
        coll = db.collection(RECORDINGS)
        found = coll.find_one_and_update(query, {"$set": changes}, return_document=ReturnDocument.AFTER)
        return _recording(found or coll.find_one({"_id": egress_id}))


def get_recording(egress_id: str) -> EgressRecording | None:
    """The recording our API started as egress `egress_id` (LiveKit's webhooks name only the egress)."""
    with db.unavailable_on_failure():
        return _recording(db.collection(RECORDINGS).find_one({"_id": egress_id}))


def recordings_of(org_id: str, room_id: str) -> list[EgressRecording]:
    """The room's recordings, newest first."""
    with db.unavailable_on_failure():
        found = db.collection(RECORDINGS).find({"orgId": org_id, "roomId": room_id}).sort("startedAt", -1)
        return [EgressRecording.model_validate(d) for d in found]


def find_recording(org_id: str, room_id: str, egress_id: str) -> EgressRecording | None:
    """One recording of the org's room, or None."""
    with db.unavailable_on_failure():
        return _recording(
            db.collection(RECORDINGS).find_one({"_id": egress_id, "orgId": org_id, "roomId": room_id})
        )


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


# --- join grants ----------------------------------------------------------------------------------


def record_grant(grant: JoinGrant) -> None:
    """Remember the token just issued; a new token readmits a participant removed before (the org's
    server asked for it with its key)."""
    fields = grant.model_dump(by_alias=True)
    with db.unavailable_on_failure():
        db.collection(GRANTS).update_one(
            {"orgId": grant.org_id, "roomId": grant.room_id, "uid": grant.uid},
            {
                "$set": fields | {"purgeAt": grant.expires_at + GRANT_KEPT},
                "$unset": {"removedAt": ""},
            },
            upsert=True,
        )


def mark_removed(org_id: str, room_id: str, uid: str, at: datetime) -> None:
    """The participant was removed: the tokens issued to them so far admit them no more."""
    with db.unavailable_on_failure():
        db.collection(GRANTS).update_one(
            {"orgId": org_id, "roomId": room_id, "uid": uid},
            {"$set": {"removedAt": at}, "$max": {"purgeAt": at + GRANT_KEPT}},
            upsert=True,
        )
