"""The transcoder's main entry point: S3 ObjectCreated records (uploads and recordings buckets),
wired into the logic. The chunked path's Step Functions tasks are `transcode.steps`, the scheduled
sweep is `transcode.sweep`."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event, event_source
from verriflo.observability import logger

from transcode import logic


@logger.inject_lambda_context(clear_state=True)
@event_source(data_class=S3Event)
def handler(event: S3Event, context: Any) -> dict[str, Any]:
    """One upload per record; the invocation's request id is the claim (stable across Lambda retries)."""
    results = []
    # S3 sends a test event without records when a notification is first configured.
    if "Records" not in event.raw_event:
        return {"results": results}
    for record in event.records:
        # S3 sends keys URL-encoded ("a%2Fb", "+" for spaces); the size is read from the object itself.
        key = unquote_plus(record.s3.get_object.key)
        result = logic.process_upload(record.s3.bucket.name, key, context.aws_request_id)
        results.append({"videoId": result.video_id, "outcome": result.outcome, "message": result.message})
    return {"results": results}
