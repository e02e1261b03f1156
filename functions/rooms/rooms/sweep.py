"""The scheduled sweep: deletes recording files once their keeping time (6 hours after class)
has passed. S3 lifecycle rules count in days, so this runs every few minutes instead."""

from __future__ import annotations

from typing import Any

from verriflo.observability import logger
from verriflo.orgs import now

from rooms import media, store


def sweep_recordings(limit: int = 200) -> int:
    """Delete the files of recordings past their time; returns how many were deleted."""
    at = now()
    done = 0
    for doc in store.due_for_deletion(at, limit):
        if doc.get("bucket") and doc.get("key"):
            media.delete_file(doc["bucket"], doc["key"])
        store.mark_deleted(doc["_id"], at)
        done += 1
    return done


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    """EventBridge schedule entry point."""
    deleted = sweep_recordings()
    logger.info("recordings.swept", extra={"deleted": deleted})
    return {"deleted": deleted}
