"""The scheduled rooms sweep: carry out what an ended class implies (retention clock, `room.finished`)
and charge closed participant sessions, when the attempt that ended or closed them was interrupted
and nobody came back (EventBridge schedule)."""

from __future__ import annotations

from typing import Any

from verriflo.observability import logger

from rooms import logic, store, webhooks  # noqa: F401 - logic registers the outbox calls of a room's end


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Drain rooms whose end effects, and charge sessions whose minutes, have waited more than a
    minute (idempotent: see verriflo.outbox; the ledger records a session's entry id once)."""
    done = {"effects": store.sweep_effects(), "charges": webhooks.settle_charges()}
    logger.info("rooms.sweep_done", extra=done)
    return done
