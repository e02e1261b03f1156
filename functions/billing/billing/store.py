"""Reads of the usage ledger for reports and listings (aggregations over the `ledger` collection)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from verriflo import db, ledger
from verriflo.errors import ValidationFailed

_GROUP_KEYS = {
    "service": "$service",
    "room": "$roomId",
    "day": {
        "$dateToString": {
            "format": "%Y-%m-%d",
            "date": {"$dateTrunc": {"date": "$occurredAt", "unit": "day"}},
        }
    },
}


def usage(org_id: str, group_by: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Debits of the org in [start, end), summed per group, largest first (days in order)."""
    pipeline = [
        {"$match": {"orgId": org_id, "kind": "debit", "occurredAt": {"$gte": start, "$lt": end}}},
        {
            "$group": {
                "_id": _GROUP_KEYS[group_by],
                "milli": {"$sum": "$amountMilli"},
                "quantity": {"$sum": "$quantity"},
                "unit": {"$first": "$unit"},
                "entries": {"$sum": 1},
            }
        },
        {"$sort": {"_id": 1} if group_by == "day" else {"milli": -1, "_id": 1}},
    ]
    with db.unavailable_on_failure():
        return list(db.collection(ledger.LEDGER).aggregate(pipeline))


def entries(org_id: str, *, limit: int, cursor: str | None, kind: str | None) -> list[dict[str, Any]]:
    """The org's entries, newest recorded first, after `cursor` (an entry's internal id)."""
    from bson import ObjectId
    from bson.errors import InvalidId

    query: dict[str, Any] = {"orgId": org_id}
    if kind:
        query["kind"] = kind
    if cursor:
        try:
            query["_id"] = {"$lt": ObjectId(cursor)}
        except (InvalidId, TypeError) as exc:
            raise ValidationFailed("The cursor is not valid.") from exc
    with db.unavailable_on_failure():
        return list(db.collection(ledger.LEDGER).find(query).sort("_id", -1).limit(limit))
