"""Queries over the org's entries: what was spent (for caps, expiries and reports) and the drift
between the balance and the sum of the entries (`verriflo credits check`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from verriflo import db
from verriflo.ledger.balance import balance_milli
from verriflo.ledger.records import LEDGER


def spent_milli(
    org_id: str, *, since: datetime | None = None, room_id: str | None = None, student_id: str | None = None
) -> int:
    """Credits debited for usage (not expiries), optionally since a time, in a room or by a student."""
    match: dict[str, Any] = {"orgId": org_id, "kind": "debit"}
    if since is not None:
        match["occurredAt"] = {"$gte": since}
    if room_id is not None:
        match["roomId"] = room_id
    if student_id is not None:
        match["studentId"] = student_id
    with db.unavailable_on_failure():
        rows = list(
            db.collection(LEDGER).aggregate(
                [{"$match": match}, {"$group": {"_id": None, "total": {"$sum": "$amountMilli"}}}]
            )
        )
    return int(rows[0]["total"]) if rows else 0


def drift_milli(org_id: str) -> int:
    """The balance minus the sum of the org's entries: 0 unless a writer crashed (see the package doc)."""
    with db.unavailable_on_failure():
        rows = list(
            db.collection(LEDGER).aggregate(
                [
                    {"$match": {"orgId": org_id}},
                    {"$group": {"_id": "$kind", "total": {"$sum": "$amountMilli"}}},
                ]
            )
        )
    totals = {r["_id"]: int(r["total"]) for r in rows}
    expected = totals.get("grant", 0) - totals.get("debit", 0) - totals.get("expiry", 0)
    return balance_milli(org_id) - expected
