"""Recording an entry: debits (`record_usage`) and grants, each counted exactly once by its id.

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
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from verriflo import db
from verriflo.errors import InsufficientCredits, ServiceUnavailable, ValidationFailed
from verriflo.ledger.alerts import announce_crossings
from verriflo.ledger.balance import admission, balance_milli, credit_limit, ensure_balance
from verriflo.ledger.caps import check_caps
from verriflo.ledger.records import (
    BALANCES,
    LEDGER,
    LedgerEntry,
    UsageEvent,
    clock,
    ledger_settings,
    to_milli,
)
from verriflo.observability import logger

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
        "recordedAt": clock(),
        "expiresAt": event.expires_at,
        "balanceAfterMilli": after,
    }


def _entry(doc: dict[str, Any], **changes: Any) -> LedgerEntry:
    return LedgerEntry.model_validate({k: v for k, v in doc.items() if k != "_id"} | changes)


def record(kind: str, event: UsageEvent, delta_milli: int, floor_milli: int | None) -> LedgerEntry:
    """Move the balance by `delta_milli` and write the entry, once per id (the two writes above);
    `floor_milli`: the lowest balance the move may leave (None: no floor)."""
    from pymongo import ReturnDocument
    from pymongo.errors import DuplicateKeyError

    ensure_balance(event.org_id)
    occurred = event.occurred_at or clock()
    balances, entries = db.collection(BALANCES), db.collection(LEDGER)
    query: dict[str, Any] = {"_id": event.org_id, "recent": {"$ne": event.entry_id}}
    if floor_milli is not None:
        query["creditsMilli"] = {"$gte": floor_milli - delta_milli}
    update = {
        "$inc": {"creditsMilli": delta_milli},
        "$push": {"recent": {"$each": [event.entry_id], "$slice": -ledger_settings().recent_window}},
        "$set": {"updatedAt": clock()},
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
    announce_crossings(event.org_id, moved)
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
        return record("debit", event, -milli, None)
    doc = admission(event.org_id)
    check_caps(event.org_id, doc, milli, room_id=event.room_id, student_id=event.student_id)
    return record("debit", event, -milli, -credit_limit(doc))


def grant(event: UsageEvent) -> LedgerEntry:
    """Add credits to the org, exactly once per entry id (expiring if `expires_at` is set)."""
    milli = to_milli(event.credits)
    if milli <= 0:
        raise ValidationFailed("A grant must be positive.")
    if event.expires_at is not None and event.expires_at <= clock():
        raise ValidationFailed("A grant must expire in the future.")
    return record("grant", event, milli, None)
