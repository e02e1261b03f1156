"""Grant expiry: when an expiring grant expires, what is left of it is removed by an `expiry` entry
(idempotent by the grant's id): left = the grant minus the usage recorded between the grant and its
expiry that earlier-expiring grants did not already absorb, never more than the balance. Expiring
grants are thereby spent first."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from verriflo import db
from verriflo.ledger.balance import balance_milli
from verriflo.ledger.recording import record
from verriflo.ledger.records import LEDGER, MILLI, LedgerEntry, UsageEvent, clock
from verriflo.ledger.usage import spent_milli
from verriflo.observability import logger


def expire_grants(org_id: str | None = None, *, at: datetime | None = None) -> list[LedgerEntry]:
    """Remove what is left of every grant that has expired by `at` (all orgs, or one); idempotent."""
    at = at or clock()
    query: dict[str, Any] = {"kind": "grant", "expiresAt": {"$ne": None, "$lte": at}, "expiredAt": None}
    if org_id is not None:
        query["orgId"] = org_id
    with db.unavailable_on_failure():
        due = list(db.collection(LEDGER).find(query).sort("expiresAt", 1).limit(1000))
    return [_expire_one(g) for g in due]


def _expire_one(g: dict[str, Any]) -> LedgerEntry:
    org_id = g["orgId"]
    with db.unavailable_on_failure():
        # Usage in the grant's lifetime, less what grants that expired before it already absorbed.
        used = spent_milli(org_id, since=g["occurredAt"]) - spent_milli(org_id, since=g["expiresAt"])
        earlier = db.collection(LEDGER).find(
            {
                "orgId": org_id,
                "kind": "grant",
                "expiredAt": {"$ne": None},
                "_id": {"$ne": g["_id"]},
                "expiresAt": {"$gt": g["occurredAt"], "$lte": g["expiresAt"]},
            },
            {"absorbedMilli": 1},
        )
        absorbed_before = sum(int(e.get("absorbedMilli", 0)) for e in earlier)
    absorbed = min(int(g["amountMilli"]), max(0, used - absorbed_before))
    left = max(0, min(int(g["amountMilli"]) - absorbed, balance_milli(org_id)))
    event = UsageEvent(
        entry_id=f"expiry-{g['entryId']}",
        org_id=org_id,
        service="adjustment",
        credits=Decimal(left) / MILLI,
        meta={"grantId": g["entryId"]},
        occurred_at=g["expiresAt"],
    )
    entry = (
        record("expiry", event, -left, None)
        if left
        else LedgerEntry(
            entryId=event.entry_id,
            orgId=org_id,
            service="adjustment",
            kind="expiry",
            amountMilli=0,
            occurredAt=g["expiresAt"],
            balanceAfterMilli=balance_milli(org_id),
            meta=event.meta,
        )
    )
    with db.unavailable_on_failure():
        db.collection(LEDGER).update_one(
            {"_id": g["_id"], "expiredAt": None}, {"$set": {"expiredAt": clock(), "absorbedMilli": absorbed}}
        )
    logger.info(
        "ledger.grant_expired", extra={"org_id": org_id, "grant": g["entryId"], "removed_milli": left}
    )
    return entry
