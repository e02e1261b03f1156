"""Reads of the usage ledger for reports and listings (aggregations over the `ledger` collection).

They return typed records (`UsageGroup`, `PostedEntry`); no pymongo or bson type leaves this module.
"""

# No `from __future__ import annotations`: pydantic would evaluate each string annotation as it
# creates every record class below, a cost every cold start pays.

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from verriflo import db, ledger
from verriflo.errors import ValidationFailed

_RECORD = ConfigDict(defer_build=True, populate_by_name=True)


class UsageGroup(BaseModel):
    """The debits of one service, room or day in a period, summed."""

    model_config = _RECORD

    key: str | None = Field(alias="_id", description="the service, room id (None: no room) or day")
    milli: int
    quantity: float
    unit: str | None = None
    entries: int


class PostedEntry(ledger.LedgerEntry):
    """One ledger entry as listed, with the cursor that pages past it (entries from before the
    ledger kept the balance after each one have none)."""

    cursor: str
    balance_after_milli: int | None = Field(default=None, alias="balanceAfterMilli")


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


def usage(org_id: str, group_by: str, start: datetime, end: datetime) -> list[UsageGroup]:
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
        return [UsageGroup.model_validate(r) for r in db.collection(ledger.LEDGER).aggregate(pipeline)]


class DayServiceGroup(UsageGroup):
    """The debits of one service on one day."""

    day: str
    service: str


def usage_by_day_and_service(org_id: str, start: datetime, end: datetime) -> list[DayServiceGroup]:
    """Debits of the org in [start, end), summed per UTC day and service, in day order."""
    pipeline = [
        {"$match": {"orgId": org_id, "kind": "debit", "occurredAt": {"$gte": start, "$lt": end}}},
        {
            "$group": {
                "_id": {"day": _GROUP_KEYS["day"], "service": "$service"},
                "milli": {"$sum": "$amountMilli"},
                "quantity": {"$sum": "$quantity"},
                "unit": {"$first": "$unit"},
                "entries": {"$sum": 1},
            }
        },
    ]
    with db.unavailable_on_failure():
        found = [
            DayServiceGroup.model_validate(r | {"_id": r["_id"]["day"], **r["_id"]})
            for r in db.collection(ledger.LEDGER).aggregate(pipeline)
        ]
    return sorted(found, key=lambda g: (g.day, -g.milli, g.service))


def entries(org_id: str, *, limit: int, cursor: str | None, kind: str | None) -> list[PostedEntry]:
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
        found = db.collection(ledger.LEDGER).find(query).sort("_id", -1).limit(limit)
        return [PostedEntry.model_validate(d | {"cursor": str(d["_id"])}) for d in found]
