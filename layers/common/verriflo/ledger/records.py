"""The ledger's vocabulary: collection names, settings, milli-credit arithmetic, the records it takes
and returns, its indexes, and its clock (the package's `now`, one name for tests to replace)."""

from __future__ import annotations

import sys
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from verriflo import db
from verriflo.settings import EnvSettings, SettingsConfigDict

LEDGER, BALANCES = "ledger", "balances"
MILLI = Decimal(1000)

Service = Literal["live", "ai_agent", "ai_tutor", "transcode", "captions", "storage", "grant", "adjustment"]
Kind = Literal["debit", "grant", "expiry"]


def clock() -> datetime:
    """The ledger's time: `verriflo.ledger.now`, looked up on each call so that a test replacing it
    moves every part of the ledger at once."""
    return sys.modules[__package__].now()


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
