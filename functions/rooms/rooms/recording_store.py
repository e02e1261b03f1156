"""MongoDB access for the recordings our API started (LiveKit Egress), what LiveKit reported of
them since, and when their files go. Records: `rooms.records.EgressRecording`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from verriflo import db

from rooms.records import RECORDINGS, EgressRecording, RecordingReport

FINAL = ["EGRESS_COMPLETE", "EGRESS_FAILED", "EGRESS_ABORTED", "EGRESS_LIMIT_REACHED", "DELETED"]


def _recording_indexes():
    from pymongo import ASCENDING, DESCENDING, IndexModel

    return [
        IndexModel([("orgId", ASCENDING), ("roomId", ASCENDING), ("startedAt", DESCENDING)]),
        IndexModel([("purgeAt", ASCENDING)], expireAfterSeconds=0),
    ]


db.register_indexes(RECORDINGS, _recording_indexes)


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
