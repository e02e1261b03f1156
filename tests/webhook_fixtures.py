"""Fixtures for webhook tests: the encryption key secret, the dispatcher queue (moto), receivers."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from webhook_receivers import Receivers, start_receivers


@pytest.fixture
def webhook_env(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """The key secret and the queue exist; receivers on loopback are allowed (local testing)."""
    import boto3
    from verriflo import webhooks

    boto3.client("secretsmanager").create_secret(
        Name="verriflo/webhook-key", SecretString=uuid.uuid4().hex * 2
    )
    queue = boto3.client("sqs").create_queue(QueueName="webhooks-test")["QueueUrl"]
    monkeypatch.setenv("WEBHOOK_QUEUE_URL", queue)
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_TARGETS", "true")
    monkeypatch.setenv("WEBHOOK_TIMEOUT_S", "1")
    monkeypatch.setenv("WEBHOOK_CONNECT_TIMEOUT_S", "1")
    webhooks.reset_keys()
    _reset_sender()
    yield {"queue": queue}
    webhooks.reset_keys()
    _reset_sender()


def _reset_sender() -> None:
    try:
        from webhook_dispatcher import sender
    except ImportError:
        return
    sender.reset_client()


@pytest.fixture
def receivers() -> Iterator[Receivers]:
    r = start_receivers()
    yield r
    r.server.shutdown()
    r.server.server_close()


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
