"""The scheduled sweep (EventBridge schedule): remove what is left of expired grants for every org,
and charge the day's storage of every stored video and recording (billing.storage)."""

from __future__ import annotations

from typing import Any

from verriflo import ledger
from verriflo.observability import logger
from verriflo.orgs import now

from billing import storage


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """Expire due grants and meter today's storage (idempotent: each grant's expiry and each
    video's day of storage is one ledger entry id)."""
    removed = ledger.expire_grants()
    total = sum(e.amount_milli for e in removed)
    stored = storage.meter_storage(now())
    logger.info(
        "billing.sweep_done",
        extra={"grants": len(removed), "removed_milli": total, "storage_charges": stored},
    )
    return {"grants": len(removed), "removedMilli": total, "storageCharges": stored}
