"""Starts the chunked-transcode state machine: one Step Functions execution per long source."""

from __future__ import annotations

from typing import TYPE_CHECKING

from verriflo import aws, media
from verriflo.errors import ServiceUnavailable

if TYPE_CHECKING:
    from transcode.models import ChunkJob


def start(job: ChunkJob, name: str) -> str:
    """Start the chunked-transcode state machine for `job`; returns the execution ARN.

    The execution name is the video id and attempt, so a repeated start of the same attempt is
    refused by Step Functions itself instead of transcoding twice.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    arn = media.media_settings().transcode_state_machine_arn
    try:
        return aws.client("stepfunctions").start_execution(
            stateMachineArn=arn, name=name[:80], input=job.model_dump_json(by_alias=False)
        )["executionArn"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ExecutionAlreadyExists":
            return ""
        raise ServiceUnavailable("The transcode workflow could not be started.") from exc
    except BotoCoreError as exc:
        raise ServiceUnavailable("The transcode workflow could not be started.") from exc
