"""The dispatcher's clock (EventBridge schedule, every minute): wake long-delayed and lost retries."""

from __future__ import annotations

from typing import Any

from verriflo.observability import logger

from webhook_dispatcher import logic


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Queue a wake-up for every delivery due soon or overdue."""
    woken = logic.sweep()
    if woken:
        logger.info("dispatcher.sweep_woke", extra={"deliveries": woken})
    return {"woken": woken}
