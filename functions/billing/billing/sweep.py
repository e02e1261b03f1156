"""The scheduled sweep: remove what is left of expired grants for every org (EventBridge schedule)."""

from __future__ import annotations

from typing import Any

from verriflo import ledger
from verriflo.observability import logger


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Expire due grants (idempotent: each grant's expiry is one ledger entry id)."""
    removed = ledger.expire_grants()
    total = sum(e.amount_milli for e in removed)
    logger.info("billing.sweep_done", extra={"grants": len(removed), "removed_milli": total})
    return {"grants": len(removed), "removedMilli": total}
