"""Credit thresholds: `credits.low` and `credits.exhausted`, announced once per crossing through an
outbox kept in the balance document (see the package's docstring)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from verriflo import db
from verriflo.errors import ServiceUnavailable
from verriflo.ledger.balance import low_mark
from verriflo.ledger.records import BALANCES, clock, from_milli
from verriflo.observability import logger


def announce_crossings(org_id: str, doc: dict[str, Any]) -> None:
    """Flip a threshold flag (and queue its event) once per crossing; re-arm it when back above."""
    balance, low = int(doc["creditsMilli"]), low_mark(doc)
    alerts = doc.get("alerts") or {}
    queued = bool(doc.get("outbox"))
    # (flag, is the balance below it now, the balance must stay under `limit` milli for it to hold)
    for name, limit, threshold in (("low", low, low), ("exhausted", 1, 0)):
        below = balance < limit
        if below and not alerts.get(name):
            event = {
                "id": f"evt_{uuid.uuid4().hex}",
                "name": f"credits.{name}",
                "data": {"remainingCredits": from_milli(balance), "threshold": from_milli(threshold)},
            }
            with db.unavailable_on_failure():
                result = db.collection(BALANCES).update_one(
                    {"_id": org_id, f"alerts.{name}": {"$ne": True}, "creditsMilli": {"$lt": limit}},
                    {"$set": {f"alerts.{name}": True}, "$push": {"outbox": event}},
                )
            queued = queued or result.modified_count == 1
        elif not below and alerts.get(name):
            with db.unavailable_on_failure():
                db.collection(BALANCES).update_one(
                    {"_id": org_id, f"alerts.{name}": True, "creditsMilli": {"$gte": limit}},
                    {"$set": {f"alerts.{name}": False}},
                )
    if queued:
        flush_outbox(org_id)


def flush_outbox(org_id: str) -> int:
    """Publish the org's queued credit events (each keeps its id); returns how many were sent."""
    from verriflo import events

    with db.unavailable_on_failure():
        doc = db.collection(BALANCES).find_one({"_id": org_id}, {"outbox": 1})
    queued = (doc or {}).get("outbox") or []
    sent = 0
    for item in queued:
        # Claim the item for a short lease so that, of many writers flushing at once, one publishes;
        # a claimer that dies leaves the lease to expire and the next write publishes instead.
        at = clock()
        with db.unavailable_on_failure():
            claimed = db.collection(BALANCES).update_one(
                {
                    "_id": org_id,
                    "outbox": {"$elemMatch": {"id": item["id"], "claimedUntil": {"$not": {"$gt": at}}}},
                },
                {"$set": {"outbox.$.claimedUntil": at + timedelta(seconds=30)}},
            )
        if claimed.modified_count != 1:
            continue
        try:
            events.publish(item["name"], org_id, item["data"], event_id=item["id"])
        except ServiceUnavailable:
            # Kept in the outbox: a later write for this org tries again, with the same event id.
            logger.warning("ledger.event_deferred", extra={"org_id": org_id, "event": item["name"]})
            with db.unavailable_on_failure():
                db.collection(BALANCES).update_one(
                    {"_id": org_id, "outbox.id": item["id"]}, {"$unset": {"outbox.$.claimedUntil": ""}}
                )
            break
        with db.unavailable_on_failure():
            db.collection(BALANCES).update_one({"_id": org_id}, {"$pull": {"outbox": {"id": item["id"]}}})
        sent += 1
    return sent
