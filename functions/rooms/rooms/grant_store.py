"""MongoDB access for the join tokens we issued: one record per participant of a room (their latest
token, not the token itself) and whether they were removed since (by our API, or from the classroom
page as LiveKit's participant_left reports it); the AI tutor admits a STUDENT who holds one,
connected or not, and the rooms webhook turns a removed one away from LiveKit.
Records: `rooms.records.JoinGrant`, `rooms.records.Removal`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from verriflo import db

from rooms.records import GRANTS, JoinGrant, Removal

GRANT_KEPT = timedelta(days=2)  # after the token expires (or the removal), then purged


def _grant_indexes():
    from pymongo import ASCENDING, IndexModel

    return [
        IndexModel([("orgId", ASCENDING), ("roomId", ASCENDING), ("uid", ASCENDING)], unique=True),
        IndexModel([("purgeAt", ASCENDING)], expireAfterSeconds=0),
    ]


db.register_indexes(GRANTS, _grant_indexes)


def record_grant(grant: JoinGrant) -> None:
    """Remember the token just issued; a new token readmits a participant removed before (the org's
    server asked for it with its key)."""
    fields = grant.model_dump(by_alias=True)
    with db.unavailable_on_failure():
        db.collection(GRANTS).update_one(
            {"orgId": grant.org_id, "roomId": grant.room_id, "uid": grant.uid},
            {
                "$set": fields | {"purgeAt": grant.expires_at + GRANT_KEPT},
                "$unset": {"removedAt": "", "removedSids": ""},
            },
            upsert=True,
        )


def _removed(at: datetime, connection: str | None) -> dict[str, Any]:
    update: dict[str, Any] = {"$set": {"removedAt": at}, "$max": {"purgeAt": at + GRANT_KEPT}}
    if connection:
        update["$addToSet"] = {"removedSids": connection}
    return update


def mark_removed(org_id: str, room_id: str, uid: str, at: datetime, connection: str | None = None) -> None:
    """The participant was removed: the tokens issued to them so far admit them no more.
    `connection` is the LiveKit participant sid the removal disconnects, if they were connected (a
    stay that began before the removal, still billed when its webhook comes late)."""
    with db.unavailable_on_failure():
        db.collection(GRANTS).update_one(
            {"orgId": org_id, "roomId": room_id, "uid": uid}, _removed(at, connection), upsert=True
        )


def mark_removed_if(
    org_id: str, room_id: str, uid: str, at: datetime, connection: str, *, role: str, issued_by: datetime
) -> bool:
    """As mark_removed, only if `uid`'s grant is `role`'s, not removed already, and issued by
    `issued_by` (a token issued later readmitted them): in one conditional update, so a redelivery
    or a concurrent readmission changes nothing. Whether it was marked."""
    query = {
        "orgId": org_id,
        "roomId": room_id,
        "uid": uid,
        "role": role,
        "removedAt": None,
        "issuedAt": {"$lte": issued_by},
    }
    with db.unavailable_on_failure():
        return db.collection(GRANTS).update_one(query, _removed(at, connection)).modified_count == 1


def holds_grant(org_id: str, room_id: str, uid: str) -> bool:
    """We issued `uid` a join token for the room and did not remove them since."""
    with db.unavailable_on_failure():
        found = db.collection(GRANTS).find_one(
            {"orgId": org_id, "roomId": room_id, "uid": uid, "removedAt": None}, {"_id": 1}
        )
    return found is not None


_REMOVAL = {"uid": 1, "removedAt": 1, "removedSids": 1}


def removal(org_id: str, room_id: str, uid: str) -> Removal | None:
    """`uid`'s removal from the room, if they are removed (not readmitted by a new token since)."""
    with db.unavailable_on_failure():
        # by the unique key alone, read on every participant_joined: filtering removedAt in the
        # query too took a third longer on the MongoDB-wire server (0.75 against 0.55 ms p50)
        doc = db.collection(GRANTS).find_one({"orgId": org_id, "roomId": room_id, "uid": uid}, _REMOVAL)
    return Removal.model_validate(doc) if doc and doc.get("removedAt") else None


def removals(org_id: str, room_id: str) -> dict[str, Removal]:
    """The removals from the room (not readmitted by a new token since), by uid."""
    with db.unavailable_on_failure():
        found = db.collection(GRANTS).find(
            {"orgId": org_id, "roomId": room_id, "removedAt": {"$ne": None}}, _REMOVAL
        )
        return {doc["uid"]: Removal.model_validate(doc) for doc in found}


def set_role(org_id: str, room_id: str, uid: str, role: str) -> None:
    """Follow a role change of a participant in the grant of their token."""
    with db.unavailable_on_failure():
        db.collection(GRANTS).update_one(
            {"orgId": org_id, "roomId": room_id, "uid": uid}, {"$set": {"role": role}}
        )
