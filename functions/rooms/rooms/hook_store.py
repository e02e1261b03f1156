"""MongoDB access for the LiveKit webhook ids being or already handled (each event is handled
once; a lease lets a retry take over from an attempt that died)."""

from __future__ import annotations

from datetime import datetime, timedelta

from verriflo import db

from rooms.records import HOOKS


def _hook_indexes():
    from pymongo import ASCENDING, IndexModel

    return [IndexModel([("expireAt", ASCENDING)], expireAfterSeconds=0)]


db.register_indexes(HOOKS, _hook_indexes)


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
