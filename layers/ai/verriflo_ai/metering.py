"""Metering AI work into the usage ledger: a credit check before a model call, a debit after it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from verriflo import ledger, pricing
from verriflo.errors import VerrifloError
from verriflo.ledger import Service
from verriflo.observability import logger

from verriflo_ai.providers import Usage

NO_CREDITS = "Insufficient credits for AI requests; add credits to continue."


def require_credits(
    org_id: str, minimum: Decimal | int = 1, *, room_id: str | None = None, student_id: str | None = None
) -> None:
    """402 before any model call when the org cannot pay for it, or when it would pass the org's
    caps (monthly; and, when named, the room's and the student's)."""
    ledger.require_credits(org_id, minimum, NO_CREDITS, room_id=room_id, student_id=student_id)


def meter(
    org_id: str,
    service: Service,
    entry_id: str,
    usage: Usage,
    meta: dict[str, Any] | None = None,
    room_id: str | None = None,
    student_id: str | None = None,
    *,
    delivered: bool = False,
) -> Decimal:
    """Debit the tokens of one request, exactly once per entry id; returns the credits charged.

    `delivered`: the answer already reached the client, so a ledger that cannot be written must not
    fail it: nothing is charged (0) and an error line names the entry and tokens for reconciliation."""
    credits = pricing.ai_tokens(usage.input_tokens, usage.output_tokens)
    try:
        _record(org_id, service, entry_id, usage, credits, meta, room_id, student_id)
    except VerrifloError as exc:
        if not delivered:
            raise
        logger.error(
            "ai.meter_failed",
            extra={
                "service": service,
                "entry_id": entry_id,
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "error": exc.code,
            },
        )
        return Decimal(0)
    return Decimal(ledger.to_milli(credits)) / 1000  # what the ledger charged, after its rounding


def _record(
    org_id: str,
    service: Service,
    entry_id: str,
    usage: Usage,
    credits: Decimal,
    meta: dict[str, Any] | None,
    room_id: str | None,
    student_id: str | None,
) -> None:
    ledger.record_usage(
        ledger.UsageEvent(
            entry_id=entry_id,
            org_id=org_id,
            service=service,
            credits=credits,
            quantity=usage.input_tokens + usage.output_tokens,
            unit="token",
            room_id=room_id,
            student_id=student_id,
            meta={
                "inputTokens": usage.input_tokens,
                "outputTokens": usage.output_tokens,
                "model": usage.model,
                "counted": usage.counted,
            }
            | (meta or {}),
        )
    )
