"""The captions worker's entry point: `{"orgId", "videoId"}`, sent asynchronously by the transcoder
as it starts a video (captioning runs beside the transcode, not after it)."""

from __future__ import annotations

from typing import Any

from verriflo.observability import logger

from captions import logic


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One video; the invocation's request id is the claim (stable across Lambda's retries)."""
    result = logic.caption_video(
        str(event.get("orgId", "")), str(event.get("videoId", "")), context.aws_request_id
    )
    return {"videoId": result.video_id, "outcome": result.outcome, "message": result.message}
