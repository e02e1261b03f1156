"""Readiness: every dependency the functions need is probed; one down is a 503 error envelope naming it."""

from __future__ import annotations

import json
import time

import pytest
from livekit_support import LiveKit
from support import api_event, call, point_at_closed_port

pytest_plugins = ("livekit_support", "health_support")

NAMES = {"mongodb", "redis", "s3", "eventbridge", "livekit", "secretsmanager", "sqs", "stepfunctions"}


@pytest.fixture
def ready(health_dependencies: dict[str, str]) -> dict[str, str]:
    return health_dependencies


@pytest.fixture
def health():
    from health.handler import handler

    return handler


def _ask(health, lambda_context):
    return call(health, api_event("health/readiness.json"), lambda_context)


def _down(reply) -> set[str]:
    assert reply.status == 503, reply.body
    assert reply.body["success"] is False and reply.body["error"] == "SERVICE_UNAVAILABLE"
    assert "data" not in reply.body and int(reply.headers["Retry-After"]) > 0
    checks = reply.body["details"]["checks"]
    assert {c["name"] for c in checks} == NAMES and reply.body["details"]["ready"] is False
    down = {c["name"] for c in checks if c["status"] == "down"}
    assert all(name in reply.body["message"] for name in down)
    return down


def test_all_up_is_200_with_every_check(ready, health, lambda_context):
    reply = _ask(health, lambda_context)
    assert reply.status == 200 and reply.body["success"] is True and reply.data["ready"] is True
    checks = {c["name"]: c for c in reply.data["checks"]}
    assert set(checks) == NAMES
    assert all(c["status"] == "up" and c["latencyMs"] >= 0 for c in checks.values())


def test_livekit_down(ready, livekit: LiveKit, health, lambda_context):
    livekit.stand_in.stop()
    assert _down(_ask(health, lambda_context)) == {"livekit"}


def test_livekit_with_wrong_credentials_is_down(ready, livekit: LiveKit, health, lambda_context):
    import boto3
    from verriflo import secrets

    boto3.client("secretsmanager").put_secret_value(
        SecretId="verriflo/livekit",
        SecretString=json.dumps({"apiKey": livekit.api_key, "apiSecret": "wrong"}),
    )
    secrets.reset_secrets()
    assert _down(_ask(health, lambda_context)) == {"livekit"}


def test_a_missing_secret_is_down(ready, health, lambda_context):
    import boto3

    boto3.client("secretsmanager").delete_secret(
        SecretId="verriflo/dispatch-secret", ForceDeleteWithoutRecovery=True
    )
    assert _down(_ask(health, lambda_context)) == {"secretsmanager"}


def test_a_missing_queue_is_down(ready, health, lambda_context):
    import boto3

    boto3.client("sqs").delete_queue(QueueUrl=ready["queue"])
    assert _down(_ask(health, lambda_context)) == {"sqs"}


def test_a_missing_state_machine_is_down(ready, health, lambda_context):
    import boto3

    boto3.client("stepfunctions").delete_state_machine(stateMachineArn=ready["machine"])
    assert _down(_ask(health, lambda_context)) == {"stepfunctions"}


def test_s3_and_eventbridge_down(ready, health, lambda_context):
    import boto3

    boto3.client("s3").delete_bucket(Bucket="verriflo-test-media")
    boto3.client("events").delete_event_bus(Name="verriflo-test-events")
    assert _down(_ask(health, lambda_context)) == {"s3", "eventbridge"}


def test_unconfigured_dependencies_are_down_not_skipped(ready, health, lambda_context, monkeypatch):
    from health import store

    monkeypatch.setenv("HEALTH_QUEUE_URLS", "")
    store.reset()
    assert _down(_ask(health, lambda_context)) == {"sqs"}


@pytest.mark.parametrize(
    ("variable", "url", "name"),
    [
        ("REDIS_URL", "redis://127.0.0.1:{port}/0", "redis"),
        ("MONGODB_URI", "mongodb://127.0.0.1:{port}/x?directConnection=true", "mongodb"),
    ],
)
def test_stores_down(ready, health, lambda_context, monkeypatch, variable, url, name):
    from servers import free_port

    point_at_closed_port(monkeypatch, variable, url.format(port=free_port()))
    reply = _ask(health, lambda_context)
    assert _down(reply) == {name}
    assert "mongodb://" not in json.dumps(reply.body) and "redis://" not in json.dumps(reply.body)


def test_a_hanging_dependency_is_down_after_the_timeout(ready, health, lambda_context, monkeypatch):
    import threading

    from health import store

    release = threading.Event()
    monkeypatch.setitem(store.CHECKS, "sqs", lambda: release.wait(30))
    start = time.monotonic()
    reply = _ask(health, lambda_context)
    release.set()
    assert _down(reply) == {"sqs"} and time.monotonic() - start < 20
    [check] = [c for c in reply.body["details"]["checks"] if c["name"] == "sqs"]
    assert check["error"] == "Timeout"
