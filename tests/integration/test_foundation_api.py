"""The shared HTTP layer: validation messages, 404/405/413, the envelope, and dependencies down."""

from __future__ import annotations

import pytest
from support import api_event, call, point_at_closed_port
from verriflo import auth, cache, settings


@pytest.fixture
def identity():
    from identity.handler import handler

    return handler


@pytest.fixture
def health():
    from health.handler import handler

    return handler


def test_malformed_json_is_400_validation_error(identity, lambda_context):
    reply = call(identity, api_event("identity/login.json", raw_body="{not json"), lambda_context)
    assert reply.status == 400
    assert reply.body["error"] == "VALIDATION_ERROR" and "JSON" in reply.body["message"]


def test_wrong_types_name_the_field(identity, lambda_context):
    reply = call(
        identity, api_event("identity/login.json", body={"email": 42, "password": "x"}), lambda_context
    )
    assert reply.status == 400 and reply.body["error"] == "VALIDATION_ERROR"
    assert "'email'" in reply.body["message"]
    assert reply.body["details"]["fields"][0]["field"] == "email"


def test_unknown_fields_are_refused_rather_than_ignored(identity, lambda_context):
    reply = call(
        identity,
        api_event("identity/login.json", body={"email": "a@b.c", "password": "x", "pasword": "y"}),
        lambda_context,
    )
    assert reply.status == 400 and "pasword" in reply.body["message"]


def test_oversized_bodies_are_413(identity, lambda_context):
    reply = call(
        identity,
        api_event("identity/login.json", raw_body='{"email": "' + "a" * 1_100_000 + '"}'),
        lambda_context,
    )
    assert reply.status == 413 and reply.body["error"] == "PAYLOAD_TOO_LARGE"


def test_unknown_routes_are_404_and_wrong_methods_405(identity, org, lambda_context):
    missing = call(
        identity, api_event("identity/whoami.json", headers=org.headers, path="/v1/nowhere"), lambda_context
    )
    assert missing.status == 404 and missing.body["error"] == "NOT_FOUND"
    wrong = call(identity, api_event("identity/login.json", method="DELETE"), lambda_context)
    assert wrong.status == 405 and wrong.body["error"] == "METHOD_NOT_ALLOWED"
    assert wrong.headers["Allow"] == "POST"


def test_every_answer_carries_the_request_id(identity, lambda_context):
    event = api_event("identity/login.json", raw_body="{")
    reply = call(identity, event, lambda_context)
    assert reply.headers["X-Request-Id"] == event["requestContext"]["requestId"]


def test_liveness_needs_no_key(health, lambda_context):
    reply = call(health, api_event("health/liveness.json"), lambda_context)
    assert reply.status == 200 and reply.data["status"] == "ok"


def test_mongodb_down_is_503_with_retry_after(identity, org, lambda_context, monkeypatch):
    from servers import free_port

    point_at_closed_port(
        monkeypatch, "MONGODB_URI", f"mongodb://127.0.0.1:{free_port()}/x?directConnection=true"
    )
    reply = call(identity, api_event("identity/whoami.json", headers=org.headers), lambda_context)
    assert reply.status == 503 and reply.body["error"] == "SERVICE_UNAVAILABLE"
    assert int(reply.headers["Retry-After"]) > 0


def test_redis_down_is_503_with_retry_after(identity, org, lambda_context, monkeypatch):
    from servers import free_port

    auth.authenticate(org.headers)  # warm the credential cache so only Redis is in the way
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    monkeypatch.setenv("REDIS_TIMEOUT_S", "0.3")
    settings.reset_settings()
    cache.reset_client()
    from verriflo import ratelimit

    ratelimit.reset_script()
    reply = call(identity, api_event("identity/whoami.json", headers=org.headers), lambda_context)
    assert reply.status == 503 and reply.headers["Retry-After"]
