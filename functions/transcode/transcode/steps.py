"""The chunked-transcode state machine's tasks (`chunk`, `join`, `fail`): each only wires the
task's input into the logic."""

from __future__ import annotations

from typing import Any

from verriflo.objects import presign_get
from verriflo.observability import logger

from transcode import chunked
from transcode.models import ChunkJob


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A task of the chunked-transcode state machine: `chunk`, `join` or `fail`."""
    job = ChunkJob.model_validate(event["job"])
    logger.append_keys(org_id=job.org_id, video_id=job.video_id, step=event.get("step"))
    if event.get("step") == "chunk":
        # FFmpeg reads the source over HTTP with ranged seeks: no chunk downloads the whole file.
        source = presign_get(job.bucket, job.key, expires_s=3600)
        return chunked.transcode_chunk(job, int(event["chunk"]["index"]), source)
    if event.get("step") == "join":
        return chunked.join_chunks(job)
    return chunked.fail_chunked(job, event.get("error"))
