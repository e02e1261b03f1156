"""The usage ledger: append-only usage events and grants, and each org's balance, kept in step.

Every entry has an id chosen by the caller (the idempotency key: a LiveKit webhook id, a request
id...). Recording an entry and moving the balance happen in one MongoDB transaction, so under any
concurrency an event is counted exactly once and the balance always equals the sum of its entries.
Amounts are stored as integer milli-credits so sums are exact.
"""

from __future__ import annotations

from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from verriflo import db
from verriflo.errors import InsufficientCredits, ValidationFailed
from verriflo.orgs import now

LEDGER, BALANCES = "ledger", "balances"
MILLI = Decimal(1000)

Service = Literal["live", "ai_agent", "ai_tutor", "transcode", "storage", "grant", "adjustment"]


def _ledger_indexes():
    from pymongo import ASCENDING, DESCENDING, IndexModel

    return [
        IndexModel([("orgId", ASCENDING), ("entryId", ASCENDING)], unique=True),
        IndexModel([("orgId", ASCENDING), ("occurredAt", DESCENDING)]),
        IndexModel([("orgId", ASCENDING), ("service", ASCENDING), ("occurredAt", DESCENDING)]),
    ]


db.register_indexes(LEDGER, _ledger_indexes)


def to_milli(credits: Decimal | float | int | str) -> int:
    """Credits to integer milli-credits, rounded half up."""
    return int((Decimal(str(credits)) * MILLI).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def from_milli(milli: int) -> float:
    """Milli-credits to credits for display."""
    return float(Decimal(milli) / MILLI)


class UsageEvent(BaseModel):
    """Something that costs (or, for grants, adds) credits."""

    entry_id: str = Field(min_length=1, max_length=200)
    org_id: str
    service: Service
    credits: Decimal = Field(description="credits consumed (positive) or granted (negative for debits)")
    quantity: float = 0
    unit: str = "credit"
    room_id: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)
    occurred_at: datetime | None = None
    expires_at: datetime | None = None


class LedgerEntry(BaseModel):
    """What the ledger recorded, and the balance right after it."""

    model_config = ConfigDict(populate_by_name=True)

    entry_id: str = Field(alias="entryId")
    org_id: str = Field(alias="orgId")
    service: Service
    kind: Literal["debit", "grant"]
    amount_milli: int = Field(alias="amountMilli")
    quantity: float = 0
    unit: str = "credit"
    room_id: str | None = Field(default=None, alias="roomId")
    meta: dict[str, Any] = Field(default_factory=dict)
    occurred_at: datetime = Field(alias="occurredAt")
    balance_after_milli: int = Field(alias="balanceAfterMilli")
    duplicate: bool = False


_balances_seen: set[str] = set()


def reset_cache() -> None:
    """Forget which balance documents exist (tests start each case on a fresh database)."""
    _balances_seen.clear()


def _ensure_balance(org_id: str) -> None:
    """Create the org's balance document once (get-or-create without upsert races)."""
    if org_id in _balances_seen:
        return
    from pymongo.errors import DuplicateKeyError

    with db.unavailable_on_failure():
        try:
            db.collection(BALANCES).insert_one({"_id": org_id, "creditsMilli": 0, "updatedAt": now()})
        except DuplicateKeyError:
            pass
    _balances_seen.add(org_id)


def _record(kind: str, event: UsageEvent, delta_milli: int, floor_milli: int | None) -> LedgerEntry:
    from pymongo import ReturnDocument
    from pymongo.errors import DuplicateKeyError

    _ensure_balance(event.org_id)
    occurred = event.occurred_at or now()

    def work(session: Any) -> int:
        query: dict[str, Any] = {"_id": event.org_id}
        if floor_milli is not None:
            query["creditsMilli"] = {"$gte": floor_milli - delta_milli}
        balance = db.collection(BALANCES).find_one_and_update(
            query, {"$inc": {"creditsMilli": delta_milli}, "$set": {"updatedAt": now()}},
            return_document=ReturnDocument.AFTER, session=session,
        )
        if balance is None:
            raise InsufficientCredits()
        entry = {
            "orgId": event.org_id, "entryId": event.entry_id, "service": event.service, "kind": kind,
            "amountMilli": abs(delta_milli), "quantity": event.quantity, "unit": event.unit,
            "roomId": event.room_id, "meta": event.meta, "occurredAt": occurred,
            "recordedAt": now(), "expiresAt": event.expires_at,
            "balanceAfterMilli": balance["creditsMilli"],
        }
        db.collection(LEDGER).insert_one(entry, session=session)
        return int(balance["creditsMilli"])

    try:
        after = db.in_transaction(work)
    except DuplicateKeyError:
        existing = db.collection(LEDGER).find_one({"orgId": event.org_id, "entryId": event.entry_id})
        return LedgerEntry.model_validate(existing | {"duplicate": True})
    return LedgerEntry(
        entryId=event.entry_id, orgId=event.org_id, service=event.service, kind=kind,  # type: ignore[arg-type]
        amountMilli=abs(delta_milli), quantity=event.quantity, unit=event.unit, roomId=event.room_id,
        meta=event.meta, occurredAt=occurred, balanceAfterMilli=after,
    )


def record_usage(event: UsageEvent, *, allow_negative: bool = True) -> LedgerEntry:
    """Debit the org for usage, exactly once per entry id.

    Live usage may take a prepaid balance below zero (API.md); pass allow_negative=False for work
    that must be paid up front, which then raises InsufficientCredits instead of overspending.
    """
    milli = to_milli(event.credits)
    if milli < 0:
        raise ValidationFailed("Usage must not be negative.")
    return _record("debit", event, -milli, None if allow_negative else 0)


def grant(event: UsageEvent) -> LedgerEntry:
    """Add credits to the org, exactly once per entry id."""
    milli = to_milli(event.credits)
    if milli <= 0:
        raise ValidationFailed("A grant must be positive.")
    return _record("grant", event, milli, None)


def balance_milli(org_id: str) -> int:
    """The org's current balance in milli-credits (0 for an org that never had any)."""
    with db.unavailable_on_failure():
        doc = db.collection(BALANCES).find_one({"_id": org_id}, {"creditsMilli": 1})
    return int(doc["creditsMilli"]) if doc else 0


def require_credits(org_id: str, minimum: Decimal | int, message: str | None = None) -> int:
    """Raise InsufficientCredits (402) unless the org holds at least `minimum` credits."""
    current = balance_milli(org_id)
    if current < to_milli(minimum):
        raise InsufficientCredits(message)
    return current
