"""Billing routes: balance, usage reports, the ledger, spending limits (rate-limit group "billing")."""

# No `from __future__ import annotations` here: Powertools resolves each route's dependencies with
# typing.get_type_hints on every request, and string annotations are re-compiled each time.
from datetime import datetime
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Query
from verriflo.api import Envelope, Org, create_app, lambda_handler, ok, protected, responses

from billing import logic, models

app = create_app()
api = protected(app, "billing")
TAGS = ["billing"]


@api.get(
    "/v1/billing/balance",
    summary="The organisation's credit balance",
    tags=TAGS,
    responses=responses(models.Balance, 401, 429, 503),
)
def balance(org: Org) -> Envelope[models.Balance]:
    """Prepaid or postpaid; `remainingCredits` may be negative after live usage (OVERCONSUMED)."""
    return ok(logic.balance(org))


@api.get(
    "/v1/billing/usage",
    summary="Credits used, grouped by service, room or day",
    tags=TAGS,
    responses=responses(models.UsageReport, 400, 401, 429, 503),
)
def usage(
    org: Org,
    group_by: Annotated[Literal["service", "room", "day"], Query(alias="groupBy")] = "service",
    start: Annotated[
        datetime | None, Query(alias="from", description="ISO 8601; default 30 days ago")
    ] = None,
    end: Annotated[datetime | None, Query(alias="to", description="ISO 8601, exclusive; default now")] = None,
    by: Annotated[
        Literal["service"] | None,
        Query(
            description="with groupBy=day: each day's `services[{service, credits, quantity, unit, entries}]`"
        ),
    ] = None,
) -> Envelope[models.UsageReport]:
    """Debits in [from, to), at most 366 days, summed per group (days in UTC); `groupBy=day&by=service`
    is the per-day series split per service (days without usage are absent)."""
    return ok(logic.usage_report(org, group_by, start, end, by))


@api.get(
    "/v1/billing/ledger",
    summary="Grants, debits and expiries, newest first",
    tags=TAGS,
    responses=responses(models.LedgerPage, 400, 401, 429, 503),
)
def ledger_page(
    org: Org,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
    kind: Annotated[Literal["debit", "grant", "expiry"] | None, Query()] = None,
) -> Envelope[models.LedgerPage]:
    """Paginated with `nextCursor`."""
    return ok(logic.ledger_page(org, limit=limit, cursor=cursor, kind=kind))


@api.get(
    "/v1/billing/limits",
    summary="Spending caps and the low-credit mark",
    tags=TAGS,
    responses=responses(models.Limits, 401, 429, 503),
)
def get_limits(org: Org) -> Envelope[models.Limits]:
    """Caps are checked before work starts (402); `credits.low` fires below the mark."""
    return ok(logic.get_limits(org))


@api.put(
    "/v1/billing/limits",
    summary="Set spending caps and the low-credit mark",
    tags=TAGS,
    responses=responses(models.Limits, 400, 401, 403, 429, 503),
)
def set_limits(body: models.LimitsUpdate, org: Org) -> Envelope[models.Limits]:
    """A null cap clears it; an omitted one stays as it is."""
    return ok(logic.set_limits(org, body))


handler = lambda_handler(app)
