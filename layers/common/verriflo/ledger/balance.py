"""Each org's balance document: created once, read (balance, admission fields, state) and configured
(caps, low-credit mark, credit limit). The recording of entries that move it is in `recording`."""

from __future__ import annotations

from typing import Any

from verriflo import db
from verriflo.errors import ValidationFailed
from verriflo.ledger.records import BALANCES, BalanceState, Caps, clock, ledger_settings, to_milli

_balances_seen: set[str] = set()


def reset_cache() -> None:
    """Forget which balance documents exist (tests start each case on a fresh database)."""
    _balances_seen.clear()
    ledger_settings.cache_clear()


def ensure_balance(org_id: str) -> None:
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
                    "updatedAt": clock(),
                }
            )
        except DuplicateKeyError:
            pass
    _balances_seen.add(org_id)


def balance_milli(org_id: str) -> int:
    """The org's current balance in milli-credits (0 for an org that never had any)."""
    with db.unavailable_on_failure():
        doc = db.collection(BALANCES).find_one({"_id": org_id}, {"creditsMilli": 1})
    return int(doc["creditsMilli"]) if doc else 0


def admission(org_id: str) -> dict[str, Any]:
    """What the 402 rules read, in one round trip: balance, credit limit and caps."""
    with db.unavailable_on_failure():
        doc = db.collection(BALANCES).find_one(
            {"_id": org_id}, {"creditsMilli": 1, "creditLimitMilli": 1, "caps": 1}
        )
    return doc or {}


def credit_limit(doc: dict[str, Any]) -> int:
    """The credit limit (milli) of a balance document: how far below zero admission may go."""
    return int(doc.get("creditLimitMilli") or 0)


def low_mark(doc: dict[str, Any]) -> int:
    """The low-credit mark (milli) of a balance document, or the default one."""
    mark = doc.get("lowMarkMilli")
    return int(mark) if mark is not None else to_milli(ledger_settings().low_credits)


def state(org_id: str) -> BalanceState:
    """The org's balance, low mark, caps and alert flags."""
    ensure_balance(org_id)
    with db.unavailable_on_failure():
        doc = db.collection(BALANCES).find_one({"_id": org_id}, {"recent": 0, "outbox": 0}) or {}
    alerts = doc.get("alerts") or {}
    return BalanceState(
        credits_milli=int(doc.get("creditsMilli", 0)),
        low_mark_milli=low_mark(doc),
        credit_limit_milli=credit_limit(doc),
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
    ensure_balance(org_id)
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
