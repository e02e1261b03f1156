"""The transcoder's scheduled sweep: retention of recordings, and every video that must not stay
`pending` or `processing` forever."""

from __future__ import annotations

from typing import Any

from verriflo import transcripts
from verriflo.observability import logger

from transcode import reconcile


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Scheduled: delete recordings whose retention after class ran out, fail transcodes that died
    for good (so no video stays `processing` forever), settle pending videos whose S3 trigger was
    lost or spent every retry (so none stays `pending` forever), and complete the charges and events
    of finished videos whose own attempt was interrupted."""
    from transcode import redispatch

    result = {
        "deleted": reconcile.expire_recordings(),
        "stalled": reconcile.fail_stalled(),
        "failedInvocations": reconcile.failed_invocations(
            redispatch.failed_invocations(), redispatch.done, redispatch.invoke_transcode
        ),
        "pending": reconcile.reconcile_pending(redispatch.invoke_transcode),
        "effects": reconcile.complete_effects(),
        "captions": transcripts.fail_stalled(),  # captions whose worker was lost for good
    }
    logger.info("transcode.sweep_done", extra=result)
    return result
