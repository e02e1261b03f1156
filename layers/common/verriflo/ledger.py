"""The usage ledger: append-only usage events and grants, and each org's balance, kept in step.

Every entry has an id chosen by the caller (the idempotency key: a LiveKit webhook id, a request
id...), and is counted exactly once. Amounts are integer milli-credits so sums are exact.

How one entry is recorded (two writes, no multi-document transaction: a transaction on the one hot
balance document cost ten times a bare conditional update under 50 concurrent writers, see
bench/bench_billing.py; a one-write design that buffers entries in the balance document and moves
them in batches was measured slower still on the MongoDB-wire server, see the README's billing
section and `BENCH_LEDGER_PROBE=1`):
1. One conditional update of the org's balance document moves the balance and appends the entry id
   to `recent` (the last RECENT_WINDOW ids), guarded by `recent != id` (and, for work paid up front,
   by the floor). It is atomic, so a concurrent replay of the same id cannot move the balance twice,
   and a debit can never take the balance below its floor.
2. The entry is inserted into the ledger, whose unique (orgId, entryId) index is the exactly-once
   guard for all time. A replay older than the window passes step 1 but fails here, and undoes its
   own step 1 (only that writer reaches the undo, once).
A crash between 1 and 2 leaves the balance moved and the id in `recent` without a ledger row; the
producer's retry of the same id (SQS, LiveKit and our own callers retry) finds it there and writes
the missing row ("healed"), so the balance again equals the sum of the entries. The one case left:
a crash between the writes AND more than RECENT_WINDOW newer entries for the org before the retry;
the retry then moves the balance a second time. `drift_milli` (CLI `verriflo credits check`) shows
any difference between the balance and the sum of the entries.

Thresholds: `credits.low` (balance below the org's low mark) and `credits.exhausted` (balance at or
below zero) are published once per crossing. The flag that says "already announced" flips in a
conditional update that also appends the event to an `outbox` in the same document, so exactly one
writer announces each crossing, and an event whose publish failed is re-sent (same event id, which
the webhook dispatcher turns into one delivery) by the next write that sees the outbox non-empty.

Caps (optional, per org and month, per room, per student and month) are admission limits: they are
checked, like the 402 rules, before work starts (`require_credits`, and `record_usage` with
`allow_negative=False`); usage that already happened (live minutes) is always recorded.

A credit limit (overdraft, for postpaid orgs billed at the end of their cycle; 0 unless an operator
sets one) lets admission go that far below zero: the 402 rules compare the balance plus the limit
with what the work needs, and work paid up front may take the balance down to minus the limit.

Expiring grants are spent first. When one expires, what is left of it is removed by an `expiry`
entry (idempotent by the grant's id): left = the grant minus the usage recorded between the grant
and its expiry that earlier-expiring grants did not already absorb, never more than the balance.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from verriflo import db
from verriflo.errors import InsufficientCredits, ServiceUnavailable, ValidationFailed
from verriflo.observability import logger
from verriflo.orgs import now
from verriflo.settings import EnvSettings, SettingsConfigDict

LEDGER, BALANCES = "ledger", "balances"
MILLI = Decimal(1000)

Service = Literal["live", "ai_agent", "ai_tutor", "transcode", "captions", "storage", "grant", "adjustment"]
Kind = Literal["debit", "grant", "expiry"]


class LedgerSettings(EnvSettings):
    """Ledger tuning and the default low-credit mark."""

    model_config = SettingsConfigDict(env_prefix="LEDGER_", extra="ignore")

    recent_window: int = Field(
        default=32, ge=16, le=5000, description="entry ids kept on the balance document for replay checks"
    )
    low_credits: Decimal = Field(
        default=Decimal(100), ge=0, description="credits.low fires below this many credits (per org override)"
    )


@cache
def ledger_settings() -> LedgerSettings:
    """The ledger settings, read once per process."""
    return LedgerSettings()


def _ledger_indexes():
    from pymongo import ASCENDING, DESCENDING, IndexModel

    return [
        IndexModel([("orgId", ASCENDING), ("entryId", ASCENDING)], unique=True),
        IndexModel([("orgId", ASCENDING), ("occurredAt", DESCENDING)]),
        # No index leads with service: reports by service read a period of the org through (orgId,
        # occurredAt), and each index costs every insert (about 0.1 ms a row on the MongoDB-wire server).
        # Partial: most entries have no room, student or expiry.
        IndexModel(
            [("orgId", ASCENDING), ("roomId", ASCENDING), ("occurredAt", DESCENDING)],
            partialFilterExpression={"roomId": {"$type": "string"}},
        ),
        IndexModel(
            [("orgId", ASCENDING), ("studentId", ASCENDING), ("occurredAt", DESCENDING)],
            partialFilterExpression={"studentId": {"$type": "string"}},
        ),
        IndexModel([("expiresAt", ASCENDING)], partialFilterExpression={"expiresAt": {"$type": "date"}}),
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

    model_config = ConfigDict(defer_build=True)

    entry_id: str = Field(min_length=1, max_length=200)
    org_id: str
    service: Service
    credits: Decimal = Field(description="credits consumed (positive) or granted (negative for debits)")
    quantity: float = 0
    unit: str = "credit"
    room_id: str | None = None
    student_id: str | None = None
    meta: dict[str, Any] = Field(default_factory=dict)
    occurred_at: datetime | None = None
    expires_at: datetime | None = None


class LedgerEntry(BaseModel):
    """What the ledger recorded, and the balance right after it (for a duplicate: the balance now)."""

    model_config = ConfigDict(defer_build=True, populate_by_name=True)

    entry_id: str = Field(alias="entryId")
    org_id: str = Field(alias="orgId")
    service: Service
    kind: Kind
    amount_milli: int = Field(alias="amountMilli")
    quantity: float = 0
    unit: str = "credit"
    room_id: str | None = Field(default=None, alias="roomId")
    student_id: str | None = Field(default=None, alias="studentId")
    meta: dict[str, Any] = Field(default_factory=dict)
    occurred_at: datetime = Field(alias="occurredAt")
    expires_at: datetime | None = Field(default=None, alias="expiresAt")
    balance_after_milli: int = Field(alias="balanceAfterMilli")
    duplicate: bool = False


class Caps(BaseModel):
    """Optional spending caps in milli-credits (None: no cap)."""

    model_config = ConfigDict(defer_build=True, populate_by_name=True)

    org_monthly_milli: int | None = Field(default=None, ge=0, alias="orgMonthlyMilli")
    room_milli: int | None = Field(default=None, ge=0, alias="roomMilli")
    student_monthly_milli: int | None = Field(default=None, ge=0, alias="studentMonthlyMilli")


class BalanceState(BaseModel):
    """The balance document as the billing API reads it."""

    model_config = ConfigDict(defer_build=True)

    credits_milli: int = 0
    low_mark_milli: int
    credit_limit_milli: int = 0
    caps: Caps = Field(default_factory=Caps)
    low_announced: bool = False
    exhausted_announced: bool = False


_balances_seen: set[str] = set()


def reset_cache() -> None:
    """Forget which balance documents exist (tests start each case on a fresh database)."""
    _balances_seen.clear()
    ledger_settings.cache_clear()


def _ensure_balance(org_id: str) -> None:
    """Create the org's balance document once (get-or-create without upsert races)."""
    if org_id in _balances_seen:
        return
    from pymongo.errors import DuplicateKeyError

    with db.unavailable_on_failure():
        try:
            db.collection(BALANCES).insert_one(
                {
                    "_id": org_id,
                    "creditsMilli": 0,
                    "recent": [],
                    "outbox": [],
                    "alerts": {},
                    "updatedAt": now(),
                }
            )
        except DuplicateKeyError:
            pass
    _balances_seen.add(org_id)


# --- recording ------------------------------------------------------------------------------------

_PROJECTION = {"creditsMilli": 1, "alerts": 1, "outbox": 1, "lowMarkMilli": 1}


def _entry_doc(
    kind: str, event: UsageEvent, delta_milli: int, occurred: datetime, after: int
) -> dict[str, Any]:
    return {
        "orgId": event.org_id,
        "entryId": event.entry_id,
        "service": event.service,
        "kind": kind,
        "amountMilli": abs(delta_milli),
        "quantity": event.quantity,
        "unit": event.unit,
        "roomId": event.room_id,
        "studentId": event.student_id,
        "meta": event.meta,
        "occurredAt": occurred,
        "recordedAt": now(),
        "expiresAt": event.expires_at,
        "balanceAfterMilli": after,
    }


def _entry(doc: dict[str, Any], **changes: Any) -> LedgerEntry:
    return LedgerEntry.model_validate({k: v for k, v in doc.items() if k != "_id"} | changes)


def _record(kind: str, event: UsageEvent, delta_milli: int, floor_milli: int | None) -> LedgerEntry:
    from pymongo import ReturnDocument
    from pymongo.errors import DuplicateKeyError

    _ensure_balance(event.org_id)
    occurred = event.occurred_at or now()
    balances, entries = db.collection(BALANCES), db.collection(LEDGER)
    query: dict[str, Any] = {"_id": event.org_id, "recent": {"$ne": event.entry_id}}
    if floor_milli is not None:
        query["creditsMilli"] = {"$gte": floor_milli - delta_milli}
    update = {
        "$inc": {"creditsMilli": delta_milli},
        "$push": {"recent": {"$each": [event.entry_id], "$slice": -ledger_settings().recent_window}},
        "$set": {"updatedAt": now()},
    }
    with db.unavailable_on_failure():
        for _ in range(5):
            moved = balances.find_one_and_update(
                query, update, projection=_PROJECTION, return_document=ReturnDocument.AFTER
            )
            if moved is not None:
                break
            known = _not_moved(kind, event, delta_milli, occurred, floor_milli)
            if known is not None:
                return known
        else:
            raise ServiceUnavailable("The ledger is busy; retry shortly.")
        after = int(moved["creditsMilli"])
        doc = _entry_doc(kind, event, delta_milli, occurred, after)
        try:
            entries.insert_one(doc)
        except DuplicateKeyError:
            return _replayed_after_window(event, delta_milli)
    _announce_crossings(event.org_id, moved)
    return _entry(doc)


def _not_moved(
    kind: str, event: UsageEvent, delta_milli: int, occurred: datetime, floor_milli: int | None
) -> LedgerEntry | None:
    """Step 1 refused: a duplicate (returned, healing a missing row), too few credits, or None: try again.

    The id may have left `recent` between the refusal and this look, so the ledger is asked too.
    """
    import time

    from pymongo.errors import DuplicateKeyError

    balances, entries = db.collection(BALANCES), db.collection(LEDGER)
    existing = entries.find_one({"orgId": event.org_id, "entryId": event.entry_id})
    seen = balances.find_one({"_id": event.org_id, "recent": event.entry_id}, {"creditsMilli": 1})
    if existing is None and seen is not None:
        # The balance moved for this id but its row is missing: its writer is a moment from inserting
        # it, or crashed. Wait briefly, then write the row; a live writer sees `healed`, keeps its move.
        for _ in range(10):
            time.sleep(0.05)
            if (existing := entries.find_one({"orgId": event.org_id, "entryId": event.entry_id})) is not None:
                break
        else:
            after = int(seen["creditsMilli"])
            healed = _entry_doc(kind, event, delta_milli, occurred, after) | {"healed": True}
            try:
                entries.insert_one(healed)
                logger.warning(
                    "ledger.entry_healed", extra={"org_id": event.org_id, "entry_id": event.entry_id}
                )
                return _entry(healed, duplicate=True)
            except DuplicateKeyError:
                existing = entries.find_one({"orgId": event.org_id, "entryId": event.entry_id})
    if existing is not None:
        return _entry(existing, duplicate=True, balanceAfterMilli=balance_milli(event.org_id))
    if floor_milli is not None and balance_milli(event.org_id) < floor_milli - delta_milli:
        raise InsufficientCredits()
    return None


def _replayed_after_window(event: UsageEvent, delta_milli: int) -> LedgerEntry:
    """Step 2 found the id already recorded: undo our balance move once, unless the row is a heal of it."""
    balances, entries = db.collection(BALANCES), db.collection(LEDGER)
    existing = entries.find_one({"orgId": event.org_id, "entryId": event.entry_id})
    if existing is not None and existing.get("healed"):
        return _entry(existing)
    # Only the writer whose step 1 moved the balance gets here, once: undo exactly that move (the id
    # may already have left `recent`, so the undo cannot be conditional on it).
    balances.update_one(
        {"_id": event.org_id}, {"$inc": {"creditsMilli": -delta_milli}, "$pull": {"recent": event.entry_id}}
    )
    current = balance_milli(event.org_id)
    return _entry(existing or {}, duplicate=True, balanceAfterMilli=current)


def record_usage(event: UsageEvent, *, allow_negative: bool = True) -> LedgerEntry:
    """Debit the org for usage, exactly once per entry id.

    Live usage may take a prepaid balance below zero (API.md); pass allow_negative=False for work
    that must be paid up front, which then raises InsufficientCredits instead of overspending (and
    also respects the org's caps).
    """
    milli = to_milli(event.credits)
    if milli < 0:
        raise ValidationFailed("Usage must not be negative.")
    if allow_negative:
        return _record("debit", event, -milli, None)
    doc = _admission(event.org_id)
    _check_caps(event.org_id, doc, milli, room_id=event.room_id, student_id=event.student_id)
    return _record("debit", event, -milli, -_credit_limit(doc))


def grant(event: UsageEvent) -> LedgerEntry:
    """Add credits to the org, exactly once per entry id (expiring if `expires_at` is set)."""
    milli = to_milli(event.credits)
    if milli <= 0:
        raise ValidationFailed("A grant must be positive.")
    if event.expires_at is not None and event.expires_at <= now():
        raise ValidationFailed("A grant must expire in the future.")
    return _record("grant", event, milli, None)


def balance_milli(org_id: str) -> int:
    """The org's current balance in milli-credits (0 for an org that never had any)."""
    with db.unavailable_on_failure():
        doc = db.collection(BALANCES).find_one({"_id": org_id}, {"creditsMilli": 1})
    return int(doc["creditsMilli"]) if doc else 0


def _admission(org_id: str) -> dict[str, Any]:
    """What the 402 rules read, in one round trip: balance, credit limit and caps."""
    with db.unavailable_on_failure():
        doc = db.collection(BALANCES).find_one(
            {"_id": org_id}, {"creditsMilli": 1, "creditLimitMilli": 1, "caps": 1}
        )
    return doc or {}


def _credit_limit(doc: dict[str, Any]) -> int:
    return int(doc.get("creditLimitMilli") or 0)


def require_credits(
    org_id: str,
    minimum: Decimal | int,
    message: str | None = None,
    *,
    room_id: str | None = None,
    student_id: str | None = None,
) -> int:
    """Raise InsufficientCredits (402) unless the org can spend `minimum` credits (balance plus its
    credit limit) and its caps allow; returns the balance."""
    doc = _admission(org_id)
    current = int(doc.get("creditsMilli", 0))
    needed = to_milli(minimum)
    if current + _credit_limit(doc) < needed:
        raise InsufficientCredits(message)
    _check_caps(org_id, doc, needed, room_id=room_id, student_id=student_id)
    return current


def require_within_caps(org_id: str, *, room_id: str | None = None, student_id: str | None = None) -> None:
    """Raise InsufficientCredits (402) if the org's, this room's or this student's cap is used up,
    whatever the balance (admission to usage that may take a prepaid balance below zero)."""
    _check_caps(org_id, _admission(org_id), 0, room_id=room_id, student_id=student_id)


# --- thresholds -----------------------------------------------------------------------------------


def _low_mark(doc: dict[str, Any]) -> int:
    mark = doc.get("lowMarkMilli")
    return int(mark) if mark is not None else to_milli(ledger_settings().low_credits)


def _announce_crossings(org_id: str, doc: dict[str, Any]) -> None:
    """Flip a threshold flag (and queue its event) once per crossing; re-arm it when back above."""
    balance, low = int(doc["creditsMilli"]), _low_mark(doc)
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
        at = now()
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


# --- settings per org: low mark and caps ----------------------------------------------------------


def state(org_id: str) -> BalanceState:
    """The org's balance, low mark, caps and alert flags."""
    _ensure_balance(org_id)
    with db.unavailable_on_failure():
        doc = db.collection(BALANCES).find_one({"_id": org_id}, {"recent": 0, "outbox": 0}) or {}
    alerts = doc.get("alerts") or {}
    return BalanceState(
        credits_milli=int(doc.get("creditsMilli", 0)),
        low_mark_milli=_low_mark(doc),
        credit_limit_milli=_credit_limit(doc),
        caps=Caps.model_validate(doc.get("caps") or {}),
        low_announced=bool(alerts.get("low")),
        exhausted_announced=bool(alerts.get("exhausted")),
    )


def configure(
    org_id: str,
    *,
    caps: Caps | None = None,
    low_mark_milli: int | None = None,
    credit_limit_milli: int | None = None,
) -> BalanceState:
    """Set the org's caps, low-credit mark and/or credit limit (how far below zero it may spend)."""
    _ensure_balance(org_id)
    update: dict[str, Any] = {}
    if caps is not None:
        update["caps"] = caps.model_dump(by_alias=True)
    if low_mark_milli is not None:
        if low_mark_milli < 0:
            raise ValidationFailed("The low-credit mark must not be negative.")
        update["lowMarkMilli"] = low_mark_milli
    if credit_limit_milli is not None:
        if credit_limit_milli < 0:
            raise ValidationFailed("The credit limit must not be negative.")
        update["creditLimitMilli"] = credit_limit_milli
    if update:
        with db.unavailable_on_failure():
            db.collection(BALANCES).update_one({"_id": org_id}, {"$set": update})
    return state(org_id)


_NO_CAPS = Caps()


def _month_start(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


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


def _check_caps(
    org_id: str, doc: dict[str, Any], needed_milli: int, *, room_id: str | None, student_id: str | None
) -> None:
    caps = Caps.model_validate(doc.get("caps") or {})
    if caps == _NO_CAPS:
        return
    month = _month_start(now())
    checks = [
        (caps.org_monthly_milli, lambda: spent_milli(org_id, since=month), "the organisation's monthly cap"),
        (
            caps.room_milli if room_id else None,
            lambda: spent_milli(org_id, room_id=room_id),
            "this room's cap",
        ),
        (
            caps.student_monthly_milli if student_id else None,
            lambda: spent_milli(org_id, since=month, student_id=student_id),
            "this student's monthly cap",
        ),
    ]
    for cap, spent, what in checks:
        # needing nothing (admission to usage paid afterwards) is refused once the cap is reached
        if cap is not None and spent() + max(needed_milli, 1) > cap:
            raise InsufficientCredits(f"Spending limit reached: {what} of {from_milli(cap):g} credits.")


# --- grant expiry ---------------------------------------------------------------------------------


def expire_grants(org_id: str | None = None, *, at: datetime | None = None) -> list[LedgerEntry]:
    """Remove what is left of every grant that has expired by `at` (all orgs, or one); idempotent."""
    at = at or now()
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
        _record("expiry", event, -left, None)
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
            {"_id": g["_id"], "expiredAt": None}, {"$set": {"expiredAt": now(), "absorbedMilli": absorbed}}
        )
    logger.info(
        "ledger.grant_expired", extra={"org_id": org_id, "grant": g["entryId"], "removed_milli": left}
    )
    return entry


def drift_milli(org_id: str) -> int:
    """The balance minus the sum of the org's entries: 0 unless a writer crashed (see the module doc)."""
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
