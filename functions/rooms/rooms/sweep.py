"""The scheduled rooms sweep: carry out what an ended class implies (retention clock, `room.finished`),
charge closed participant sessions and announce stored class summaries (`summary.ready`), when the
attempt that ended, closed or stored them was interrupted and nobody came back; and reconcile each
live room's participants, and end each room LiveKit closed, when a webhook was lost for good
(EventBridge schedule)."""

from __future__ import annotations

from typing import Any

from verriflo.observability import logger

from rooms import lifecycle, reconcile, session_store, store, webhooks  # noqa: F401 - lifecycle registers a room end's outbox calls


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Drain rooms whose end effects, and charge sessions whose minutes, have waited more than a
    minute (idempotent: see verriflo.outbox; the ledger records a session's entry id once)."""
    reconciled = reconcile.participants()
    done = {
        "joined": reconciled["joined"],
        "left": reconciled["left"],
        "ended": reconcile.rooms(),  # after participants: their leaves are announced first
        "effects": store.sweep_effects(),
        "sessionEffects": session_store.sweep_session_effects(),
        "charges": webhooks.settle_charges(),
        "summaryEffects": store.sweep_summary_effects(),
    }
    logger.info("rooms.sweep_done", extra=done)
    return done
