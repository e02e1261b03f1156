"""Admission: the 402 rules (balance plus credit limit against what work needs) and the optional
spending caps (per org and month, per room, per student and month), checked before work starts."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from verriflo.errors import InsufficientCredits
from verriflo.ledger.balance import admission, credit_limit
from verriflo.ledger.records import Caps, clock, from_milli, to_milli
from verriflo.ledger.usage import spent_milli

_NO_CAPS = Caps()


def _month_start(at: datetime) -> datetime:
    return at.astimezone(UTC).replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def check_caps(
    org_id: str, doc: dict[str, Any], needed_milli: int, *, room_id: str | None, student_id: str | None
) -> None:
    """Raise InsufficientCredits if spending `needed_milli` more would pass one of the org's caps
    (`doc`: the balance document's admission fields)."""
    caps = Caps.model_validate(doc.get("caps") or {})
    if caps == _NO_CAPS:
        return
    month = _month_start(clock())
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
    doc = admission(org_id)
    current = int(doc.get("creditsMilli", 0))
    needed = to_milli(minimum)
    if current + credit_limit(doc) < needed:
        raise InsufficientCredits(message)
    check_caps(org_id, doc, needed, room_id=room_id, student_id=student_id)
    return current


def require_within_caps(org_id: str, *, room_id: str | None = None, student_id: str | None = None) -> None:
    """Raise InsufficientCredits (402) if the org's, this room's or this student's cap is used up,
    whatever the balance (admission to usage that may take a prepaid balance below zero)."""
    check_caps(org_id, admission(org_id), 0, room_id=room_id, student_id=student_id)
