"""How an answer of the AI functions fails, the same for the AI API and the tutor.

Once a stream's headers are sent, a failure can only be reported in the stream (an error event, then
the end); `failure` turns any exception into that event's code and message, logging the unexpected
ones with their trace. (A delivered answer is charged with `metering.meter(..., delivered=True)`.)
"""

from __future__ import annotations

from verriflo.errors import VerrifloError
from verriflo.observability import logger

from verriflo_ai.providers import ProviderError
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
