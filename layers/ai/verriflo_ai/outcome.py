"""How an answer of the AI functions ends, the same for the AI API and the tutor: what a failure
mid-answer tells the client, and the debit of a delivered answer that must not fail it.

Once a stream's headers are sent, a failure can only be reported in the stream (an error event, then
the end); `failure` turns any exception into that event's code and message, logging the unexpected
ones with their trace. A delivered answer is charged with `meter_delivered`: when the ledger cannot
be written, the answer stands, nothing is charged, and an operator is told (a loud log line with
the entry and the tokens) to reconcile it.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from verriflo.errors import VerrifloError
from verriflo.ledger import Service
from verriflo.observability import logger

from verriflo_ai import metering
from verriflo_ai.providers import ProviderError, Usage
from verriflo_ai.speech import SpeechError

INTERNAL = "Something went wrong on our side."


def failure(exc: Exception) -> tuple[str, str]:
    """The error code and message a failed answer reports; call it while handling `exc`."""
    if isinstance(exc, (ProviderError, SpeechError)):
        return "UPSTREAM_ERROR", str(exc)
    if isinstance(exc, VerrifloError):
        return exc.code, exc.message
    logger.exception("ai.answer_crashed", extra={"error_type": type(exc).__name__})
    return "INTERNAL_ERROR", INTERNAL


def meter_delivered(
    org_id: str,
    service: Service,
    entry_id: str,
    usage: Usage,
    meta: dict[str, Any] | None = None,
    *,
    room_id: str | None = None,
    student_id: str | None = None,
) -> Decimal:
    """`metering.meter` for an answer already delivered: the credits charged, or 0 (logged as an
    error for reconciliation) when the ledger cannot be written."""
    try:
        return metering.meter(org_id, service, entry_id, usage, meta, room_id=room_id, student_id=student_id)
    except VerrifloError as exc:
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
