"""Billing logic: the balance as API.md shows it, usage reports, the ledger, spending limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_DOWN, Decimal

from pydantic import ValidationError
from verriflo import ledger, orgs, pricing
from verriflo.auth import OrgContext
from verriflo.errors import ValidationFailed

from billing import store
from billing.models import (
    Balance,
    LedgerItem,
    LedgerPage,
    Limits,
    LimitsUpdate,
    UsageQuery,
    UsageReport,
    UsageRow,
    UsageServiceRow,
)

_CENT = Decimal("0.01")


def _two(value: Decimal) -> float:
    return float(value.quantize(_CENT, rounding=ROUND_DOWN))


def cycle_start(cycle: str | None, at: datetime) -> datetime:
    """Start of the postpaid billing cycle containing `at` (weeks start on Monday, UTC)."""
    day = at.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if cycle == "weekly":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def describe(
    plan: str,
    remaining_milli: int,
    *,
    cycle: str | None = None,
    cycle_from: datetime | None = None,
    cycle_used_milli: int | None = None,
    credit_limit_milli: int = 0,
) -> Balance:
    """The balance document of API.md for a balance in milli-credits (pure: no I/O).

    A postpaid org is overconsumed once usage has taken it past its credit limit (the 402 rules then
    refuse new work, as for a prepaid org below zero).
    """
    remaining = Decimal(remaining_milli) / ledger.MILLI
    rate = pricing.prices().credit_value_bdt
    postpaid = plan == "postpaid"
    limit = credit_limit_milli if postpaid else 0
    over = remaining_milli < -limit
    if postpaid:
        used = Decimal(cycle_used_milli or 0) / ledger.MILLI
        message = f"Postpaid ({cycle or 'monthly'}): {used:,.2f} credits used this cycle, billed at its end"
        if over:
            cap = Decimal(limit) / ledger.MILLI
            message += f"; past the credit limit of {cap:,.2f}: new work is refused."
        else:
            message += "."
    elif over:
        message = (
            f"Credits overconsumed by {-remaining:,.2f}; add credits to start new classes and AI requests."
        )
    elif remaining_milli < ledger.to_milli(pricing.MIN_CREDITS_TO_START_CLASS):
        minimum = pricing.MIN_CREDITS_TO_START_CLASS
        message = f"{remaining:,.2f} credits remaining: below the {minimum} needed to start a class."
    else:
        message = f"{remaining:,.2f} credits remaining."
    return Balance(
        type="POSTPAID" if postpaid else "PREPAID",
        status="OVERCONSUMED" if over else "ACTIVE",
        remaining_credits=float(remaining),
        display_credits=_two(max(remaining, Decimal(0))),
        is_overconsumed=over,
        credit_rate=float(rate),
        estimated_value=_two(remaining * rate),
        message=message,
        billing_cycle=(cycle or "monthly") if postpaid else None,
        cycle_started_at=cycle_from if postpaid else None,
        cycle_usage_credits=float(Decimal(cycle_used_milli or 0) / ledger.MILLI) if postpaid else None,
        credit_limit=ledger.from_milli(limit) if postpaid else None,
        available_credits=ledger.from_milli(remaining_milli + limit) if postpaid else None,
    )


def balance(org: OrgContext) -> Balance:
    """The org's balance now (expired grants removed first)."""
    ledger.expire_grants(org.org_id)
    if org.plan != "postpaid":
        return describe("prepaid", ledger.balance_milli(org.org_id))
    state = ledger.state(org.org_id)
    cycle = orgs.get_org(org.org_id).billing_cycle
    start = cycle_start(cycle, orgs.now())
    return describe(
        "postpaid",
        state.credits_milli,
        cycle=cycle,
        cycle_from=start,
        cycle_used_milli=ledger.spent_milli(org.org_id, since=start),
        credit_limit_milli=state.credit_limit_milli,
    )


def usage_report(
    org: OrgContext, group_by: str, start: datetime | None, end: datetime | None, by: str | None = None
) -> UsageReport:
    """Credits used in [start, end) (default: the last 30 days), grouped by service, room or day;
    with `by=service`, each day split per service (the Console's chart)."""
    end = end or orgs.now()
    try:
        query = UsageQuery(group_by=group_by, start=start or end - timedelta(days=30), end=end)
    except ValidationError as exc:
        reason = exc.errors()[0]["msg"].removeprefix("Value error, ")
        raise ValidationFailed(f"Invalid period: {reason}.") from exc
    if by is not None and query.group_by != "day":
        raise ValidationFailed("Invalid value for 'by': only groupBy=day can be split by service.")
    rows = store.usage(org.org_id, query.group_by, query.start, query.end)
    split = _per_service(org.org_id, query) if by == "service" else {}
    items = [
        UsageRow(
            key=r.key,
            credits=ledger.from_milli(r.milli),
            quantity=r.quantity,
            unit=r.unit if query.group_by == "service" else None,
            entries=r.entries,
            services=split.get(r.key) if by == "service" else None,
        )
        for r in rows
    ]
    total = ledger.from_milli(sum(r.milli for r in rows))
    return UsageReport(
        group_by=query.group_by, by=by, start=query.start, end=query.end, total_credits=total, rows=items
    )


def _per_service(org_id: str, query: UsageQuery) -> dict[str | None, list[UsageServiceRow]]:
    days: dict[str | None, list[UsageServiceRow]] = {}
    for g in store.usage_by_day_and_service(org_id, query.start, query.end):
        days.setdefault(g.day, []).append(
            UsageServiceRow(
                service=g.service,
                credits=ledger.from_milli(g.milli),
                quantity=g.quantity,
                unit=g.unit,
                entries=g.entries,
            )
        )
    return days


def ledger_page(org: OrgContext, *, limit: int, cursor: str | None, kind: str | None) -> LedgerPage:
    """A page of the org's grants, debits and expiries, newest first."""
    found = store.entries(org.org_id, limit=limit + 1, cursor=cursor, kind=kind)
    items = [
        LedgerItem(
            id=e.entry_id,
            kind=e.kind,
            service=e.service,
            credits=ledger.from_milli(e.amount_milli if e.kind == "grant" else -e.amount_milli),
            quantity=e.quantity,
            unit=e.unit,
            room_id=e.room_id,
            student_id=e.student_id,
            occurred_at=e.occurred_at,
            expires_at=e.expires_at,
            balance_after=ledger.from_milli(e.balance_after_milli)
            if e.balance_after_milli is not None
            else None,
        )
        for e in found[:limit]
    ]
    return LedgerPage(items=items, next_cursor=found[limit - 1].cursor if len(found) > limit else None)


def _credits(milli: int | None) -> float | None:
    return None if milli is None else ledger.from_milli(milli)


def _limits(state: ledger.BalanceState) -> Limits:
    return Limits(
        org_monthly_credits=_credits(state.caps.org_monthly_milli),
        room_credits=_credits(state.caps.room_milli),
        student_monthly_credits=_credits(state.caps.student_monthly_milli),
        low_credits=ledger.from_milli(state.low_mark_milli),
        credit_limit=ledger.from_milli(state.credit_limit_milli),
    )


def get_limits(org: OrgContext) -> Limits:
    """The org's spending caps and low-credit mark."""
    return _limits(ledger.state(org.org_id))


def set_limits(org: OrgContext, body: LimitsUpdate) -> Limits:
    """Change caps (null clears, omitted keeps) and the low-credit mark."""
    caps = ledger.state(org.org_id).caps
    given = body.model_fields_set
    values = {
        "orgMonthlyMilli": ("org_monthly_credits", caps.org_monthly_milli),
        "roomMilli": ("room_credits", caps.room_milli),
        "studentMonthlyMilli": ("student_monthly_credits", caps.student_monthly_milli),
    }
    new = {
        alias: (None if getattr(body, field) is None else ledger.to_milli(getattr(body, field)))
        if field in given
        else old
        for alias, (field, old) in values.items()
    }
    low = ledger.to_milli(body.low_credits) if body.low_credits is not None else None
    return _limits(ledger.configure(org.org_id, caps=ledger.Caps.model_validate(new), low_mark_milli=low))
