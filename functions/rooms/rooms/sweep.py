"""The scheduled rooms sweep: carry out what an ended class implies (retention clock, `room.finished`)
when the attempt that ended it was interrupted and nobody came back (EventBridge schedule)."""

from __future__ import annotations

from typing import Any

from verriflo import outbox
from verriflo.observability import logger

from rooms import logic, store  # noqa: F401 - logic registers the outbox calls a room's end uses


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Drain rooms whose end effects have waited more than a minute (idempotent: see verriflo.outbox)."""
    done = outbox.sweep(store.ROOMS)
    logger.info("rooms.sweep_done", extra={"effects": done})
    return {"effects": done}
