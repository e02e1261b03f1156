"""Helpers for the captions tests: a video uploaded and transcoded in-process, and the captions
worker run on it as its asynchronous invocation would."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from media_support import UPLOADS
from support import load_event


@dataclass
class WorkerContext:
    """The Lambda context of one captions invocation (its request id is the claim)."""

    aws_request_id: str
    function_name: str = "captions"
    memory_limit_in_mb: int = 2048
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:captions"

    def get_remaining_time_in_millis(self) -> int:
        return 900_000


def uploaded_and_transcoded(
    org_id: str, path: Path, lambda_context: Any, title: str = "Photosynthesis"
) -> Any:
    """A video record, its source in the uploads bucket, and the transcoder run on its S3 event."""
    from transcode import handler
    from verriflo import media

    video = media.insert_video(
        org_id, title=title, size_bytes=path.stat().st_size, content_type="video/mp4", bucket=UPLOADS
    )
    boto3.client("s3").upload_file(str(path), UPLOADS, video.source_key)
    event = copy.deepcopy(load_event("transcode/s3_object_created.json"))
    obj = event["Records"][0]["s3"]
    obj["bucket"] |= {"name": UPLOADS, "arn": f"arn:aws:s3:::{UPLOADS}"}
    obj["object"] |= {"key": video.source_key.replace("/", "%2F"), "size": path.stat().st_size}
    assert handler.handler(event, lambda_context)["results"][0]["outcome"] == "completed"
    return media.get_video(org_id, video.id)


def caption(video: Any, request_id: str = "req-1") -> dict[str, Any]:
    """Run the captions worker for `video` as one invocation."""
    from captions import handler

    return handler.handler({"orgId": video.org_id, "videoId": video.id}, WorkerContext(request_id))
