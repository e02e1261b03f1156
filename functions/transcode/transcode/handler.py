"""Entry points of the transcoder: S3 ObjectCreated records (uploads and recordings buckets), the
chunked path's Step Functions tasks, and the scheduled recording-retention sweep. Each only wires
the event into the logic."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_plus

from aws_lambda_powertools.utilities.data_classes import S3Event, event_source
from verriflo.objects import presign_get
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


@logger.inject_lambda_context(clear_state=True)
def step(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A task of the chunked-transcode state machine: `chunk`, `join` or `fail`."""
    job = logic.ChunkJob.model_validate(event["job"])
    logger.append_keys(org_id=job.org_id, video_id=job.video_id, step=event.get("step"))
    if event.get("step") == "chunk":
        # FFmpeg reads the source over HTTP with ranged seeks: no chunk downloads the whole file.
        source = presign_get(job.bucket, job.key, expires_s=3600)
        return logic.transcode_chunk(job, int(event["chunk"]["index"]), source)
    if event.get("step") == "join":
        return logic.join_chunks(job)
    return logic.fail_chunked(job, event.get("error"))


@logger.inject_lambda_context(clear_state=True)
def retention(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Scheduled: delete recordings whose retention after class ran out, fail transcodes that died
    for good (so no video stays `processing` forever), settle pending videos whose S3 trigger was
    lost or spent every retry (so none stays `pending` forever), and complete the charges and events
    of finished videos whose own attempt was interrupted."""
    from transcode import redispatch

    result = {
        "deleted": logic.expire_recordings(),
        "stalled": logic.fail_stalled(),
        "failedInvocations": logic.failed_invocations(
            redispatch.failed_invocations(), redispatch.done, redispatch.invoke_transcode
        ),
        "pending": logic.reconcile_pending(redispatch.invoke_transcode),
        "effects": logic.complete_effects(),
    }
    logger.info("transcode.sweep_done", extra=result)
    return result
