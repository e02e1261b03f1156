"""Fixtures for webhook tests: the encryption key secret, the dispatcher queue (moto), receivers."""

from __future__ import annotations

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
