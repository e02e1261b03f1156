"""MongoDB access for the join tokens we issued: one record per participant of a room (their latest
token, not the token itself) and whether they were removed since; the AI tutor admits a STUDENT
who holds one, connected or not. Records: `rooms.records.JoinGrant`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from verriflo import db

from rooms.records import GRANTS, JoinGrant

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


def set_role(org_id: str, room_id: str, uid: str, role: str) -> None:
    """Follow a role change of a participant in the grant of their token."""
    with db.unavailable_on_failure():
        db.collection(GRANTS).update_one(
            {"orgId": org_id, "roomId": room_id, "uid": uid}, {"$set": {"role": role}}
        )
