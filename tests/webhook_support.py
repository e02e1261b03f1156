"""Helpers for webhook tests: what is on the dispatcher's queue, and SQS / EventBridge event shapes."""

from __future__ import annotations

import json
import uuid
from typing import Any


def queued(queue: str) -> list[dict[str, Any]]:
    """Every message on the queue now (delays ignored), removed from it."""
    import boto3

    sqs = boto3.client("sqs")
    got = []
    while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
        got += [json.loads(m["Body"]) for m in batch]
        sqs.delete_message_batch(
            QueueUrl=queue,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
        )
    return got


def sqs_event(*bodies: Any, raw: list[str] | None = None) -> dict[str, Any]:
    """An SQS event for the dispatcher with these message bodies."""
    texts = [json.dumps(b) for b in bodies] + (raw or [])
    return {
        "Records": [
            {
                "messageId": f"m-{i}",
                "receiptHandle": f"rh-{i}",
                "body": text,
                "attributes": {},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:webhooks",
                "awsRegion": "us-east-1",
            }
            for i, text in enumerate(texts)
        ]
    }


def bridge_event(event: dict[str, Any]) -> dict[str, Any]:
    """What the EventBridge rule puts on the queue for one domain event."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": event["type"],
        "source": "verriflo",
        "account": "000000000000",
        "time": event["createdAt"],
        "region": "us-east-1",
        "resources": [],
        "detail": event,
    }


def delayed(queue: str) -> int:
    """How many messages wait on the queue for their delay to pass."""
    import boto3

    attributes = boto3.client("sqs").get_queue_attributes(
        QueueUrl=queue, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesDelayed"])
