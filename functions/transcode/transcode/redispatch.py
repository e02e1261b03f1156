"""Lambda and SQS access for reconciliation: start the transcoder again for an object whose S3
trigger was lost, and read the transcoder's on-failure destination (invocations that spent every
retry). The only module of the retention sweep that calls Lambda or SQS."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from verriflo import aws, media
from verriflo.errors import ServiceUnavailable


def s3_event(bucket: str, key: str) -> dict[str, Any]:
    """The ObjectCreated event S3 would have sent for `bucket`/`key` (keys URL-encoded, as S3 does)."""
    from urllib.parse import quote_plus

    return {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Reconciled",
                "s3": {
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {"key": quote_plus(key)},
                },
            }
        ]
    }


def invoke_transcode(bucket: str, key: str) -> None:
    """Start the transcoder for one stored object, asynchronously (its own retries and on-failure
    destination apply, as to an S3 trigger)."""
    from botocore.exceptions import BotoCoreError, ClientError

    name = media.media_settings().transcode_function_name
    if not name:
        raise ServiceUnavailable(
            "TRANSCODE_FUNCTION_NAME is not set: the transcoder cannot be started again."
        )
    try:
        aws.client("lambda").invoke(
            FunctionName=name, InvocationType="Event", Payload=json.dumps(s3_event(bucket, key)).encode()
        )
    except (BotoCoreError, ClientError) as exc:
        raise ServiceUnavailable("The transcoder could not be started.") from exc


def failed_invocations(max_messages: int = 100) -> Iterator[tuple[dict[str, Any], str]]:
    """(the failed invocation's event, receipt handle) from the on-failure queue, until it is empty
    or `max_messages` were read; delete each with `done` once handled."""
    from botocore.exceptions import BotoCoreError, ClientError

    url = media.media_settings().transcode_failed_queue_url
    if not url:
        return
    read = 0
    while read < max_messages:
        try:
            got = aws.client("sqs").receive_message(
                QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=300
            )
        except (BotoCoreError, ClientError) as exc:
            raise ServiceUnavailable("The transcoder's failure queue is unavailable.") from exc
        messages = got.get("Messages", [])
        if not messages:
            return
        for message in messages:
            read += 1
            try:
                body = json.loads(message["Body"])
            except ValueError:
                body = {}
            # A Lambda destination record: the original event is `requestPayload`.
            payload = body.get("requestPayload") if isinstance(body, dict) else None
            yield (payload if isinstance(payload, dict) else {}), message["ReceiptHandle"]


def done(receipt: str) -> None:
    """Remove a handled message from the on-failure queue."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        aws.client("sqs").delete_message(
            QueueUrl=media.media_settings().transcode_failed_queue_url, ReceiptHandle=receipt
        )
    except (BotoCoreError, ClientError) as exc:
        raise ServiceUnavailable("The transcoder's failure queue is unavailable.") from exc
