"""The ingestion sweep (EventBridge schedule): no document stays `processing` for ever. One whose
route died between storing and queueing it, or whose worker died on the queue's last receive, is
queued again (a few times, then failed with a reason): `verriflo_ai.knowledge.requeue_stalled`."""

from __future__ import annotations

from typing import Any

from verriflo.observability import logger
from verriflo_ai import knowledge


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Queue stalled documents again (or fail those queued again too often)."""
    done = knowledge.requeue_stalled()
    logger.info("ai_ingest.sweep_done", extra=done)
    return done
