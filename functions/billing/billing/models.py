"""Request and response models of the billing API (camelCase on the wire)."""

# No `from __future__ import annotations`: pydantic would evaluate each string annotation as it
# creates every model class below, a cost every cold start pays.

from datetime import datetime
from typing import Literal, Self

from pydantic import Field, model_validator
from verriflo.models import ApiModel, StrictApiModel


class Balance(ApiModel):
    """GET /v1/billing/balance, as API.md fixes it (plus the postpaid cycle)."""

    type: Literal["PREPAID", "POSTPAID"]
    status: Literal["ACTIVE", "OVERCONSUMED"]
    remaining_credits: float = Field(description="May be negative: live usage is never cut off")
    display_credits: float = Field(description="What a UI should show: never below zero, two decimals")
    is_overconsumed: bool
    credit_rate: float = Field(description="BDT per credit")
    estimated_value: float = Field(description="remainingCredits x creditRate, in `currency`")
    currency: Literal["BDT"] = "BDT"
    message: str
    billing_cycle: Literal["weekly", "monthly"] | None = None
    cycle_started_at: datetime | None = None
    cycle_usage_credits: float | None = Field(default=None, description="Postpaid: credits used this cycle")
    credit_limit: float | None = Field(
        default=None, description="Postpaid: how far below zero the org may spend (set by operators)"
    )
    available_credits: float | None = Field(
        default=None, description="Postpaid: remainingCredits plus creditLimit, what the 402 rules compare"
    )


GroupBy = Literal["service", "room", "day"]


class UsageQuery(ApiModel):
    """A usage report's period and grouping (query string)."""

    group_by: GroupBy = "service"
    start: datetime
    end: datetime

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.end <= self.start:
            raise ValueError("'from' must be before 'to'")
        if (self.end - self.start).days > 366:
            raise ValueError("a report covers at most 366 days")
        return self


class UsageServiceRow(ApiModel):
    """One service's part of a day (`groupBy=day&by=service`)."""

    service: str
    credits: float
    quantity: float
    unit: str | None = None
    entries: int


class UsageRow(ApiModel):
    """One group of a usage report."""

    key: str | None = Field(description="service name, roomId, or the day (YYYY-MM-DD, UTC)")
    credits: float
    quantity: float
    unit: str | None = None
    entries: int
    services: list[UsageServiceRow] | None = Field(
        default=None, description="`groupBy=day&by=service`: the day's credits per service, largest first"
    )


class UsageReport(ApiModel):
    """Credits used in a period, grouped."""

    group_by: GroupBy
    by: Literal["service"] | None = Field(default=None, description="the split inside each row, if any")
    start: datetime = Field(alias="from")
    end: datetime = Field(alias="to")
    total_credits: float
    rows: list[UsageRow]


class LedgerItem(ApiModel):
    """One grant, debit or expiry."""

    id: str = Field(description="The entry id (the idempotency key it was recorded with)")
    kind: Literal["debit", "grant", "expiry"]
    service: str
    credits: float = Field(description="Positive for grants, negative for debits and expiries")
    quantity: float
    unit: str
    room_id: str | None = None
    student_id: str | None = None
    occurred_at: datetime
    expires_at: datetime | None = None
    balance_after: float | None = None


class LedgerPage(ApiModel):
    """A page of the ledger, newest first."""

    items: list[LedgerItem]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at the end")


class Limits(ApiModel):
    """Spending caps (credits; null: none) and the low-credit mark."""

    org_monthly_credits: float | None = None
    room_credits: float | None = None
    student_monthly_credits: float | None = None
    low_credits: float
    credit_limit: float = Field(
        default=0, description="How far below zero the org may spend (postpaid; set by operators)"
    )


class LimitsUpdate(StrictApiModel):
    """New caps (null clears one; omitted keeps it) and low-credit mark."""

    org_monthly_credits: float | None = Field(default=None, ge=0, le=1e12)
    room_credits: float | None = Field(default=None, ge=0, le=1e12)
    student_monthly_credits: float | None = Field(default=None, ge=0, le=1e12)
    low_credits: float | None = Field(default=None, ge=0, le=1e12)
