"""A pytest plugin: what the readiness check probes, made real for a test (`health_dependencies`)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from livekit_support import LiveKit


@pytest.fixture
def health_dependencies(livekit: LiveKit, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The stack's secrets, queues and state machines in moto, LiveKit's stand-in, the health settings."""
    import boto3
    from health import store

    queue = boto3.client("sqs").create_queue(QueueName="verriflo-test-webhooks")["QueueUrl"]
    machine = boto3.client("stepfunctions").create_state_machine(
        name="verriflo-test-summary",
        definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
        roleArn="arn:aws:iam::123456789012:role/verriflo-test",
    )["stateMachineArn"]
    monkeypatch.setenv("LIVEKIT_SECRET_NAME", "verriflo/livekit")
    monkeypatch.setenv("HEALTH_SECRET_NAMES", "verriflo/jwt-secret,verriflo/dispatch-secret,verriflo/livekit")
    monkeypatch.setenv("HEALTH_QUEUE_URLS", queue)
    monkeypatch.setenv("HEALTH_STATE_MACHINE_ARNS", machine)
    monkeypatch.setenv("CHECK_TIMEOUT_S", "5")  # generous: two cores shared by test runs
    store.reset()
    yield {"queue": queue, "machine": machine}
    store.reset()
