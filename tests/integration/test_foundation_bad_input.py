"""Bad input is a 4xx error envelope with the request id on every route, never a 5xx (issue 12).

Generated over the OpenAPI document: each operation is sent, in-process, to the function that
serves it (Powertools or streamed ASGI routes alike) with each bad body of `tests/bad_input.py`.
"""

from __future__ import annotations

import base64
import importlib
from pathlib import Path
from typing import Any

import pytest
from bad_input import Operation, bad_bodies, check_answer, check_error, operations, request_fields
from media_support import use_media_env
from support import api_event, call
from verriflo.openapi_document import load_document
from verriflo_tools.openapi import function_packages

pytest_plugins = ("livekit_support", "health_support")

ROOT = Path(__file__).resolve().parents[2]
DOCUMENT = load_document()
OPERATIONS = operations(DOCUMENT)
WITH_BODY = [op for op in OPERATIONS if op.has_body]
POSTED = [op for op in OPERATIONS if op.method in ("post", "put", "patch")]


def _serving_handlers() -> dict[str, Any]:
    """Document path -> the Lambda handler of the function that serves it."""
    served = {}
    for name in function_packages(ROOT / "functions"):
        module = importlib.import_module(f"{name}.handler")
        paths = list(module.app.get_openapi_schema().paths or {})
        if callable(getattr(module, "openapi_paths", None)):
            paths += list(module.openapi_paths()["paths"])
        served.update(dict.fromkeys(paths, module.handler))
    return served


@pytest.fixture(scope="module")
def handlers() -> dict[str, Any]:
    return _serving_handlers()


@pytest.fixture
def credentials(org, monkeypatch) -> dict[str, dict[str, str]]:
    from verriflo import auth
    from verriflo.secrets import get_secret
    from verriflo.settings import secret_settings

    use_media_env(monkeypatch)  # the stream routes' signing key
    # The owner's token: every org route admits it (the org key may not manage keys, and callers are
    # admitted before their input is read).
    token, _, _ = auth.login(org.owner_email, org.owner_password)
    return {
        "org": {"Authorization": f"Bearer {token}"},
        "internal": {"X-Dispatch-Secret": get_secret(secret_settings().dispatch_secret_name)},
        "public": {},
    }


def _with_dependencies(op: Operation, request: pytest.FixtureRequest) -> None:
    """Readiness answers 503 while a dependency is missing: give it the stack's (LiveKit, secrets,
    queues, state machines), so what is checked is its answer to the bad input."""
    if op.path == "/v1/health/ready":
        request.getfixturevalue("health_dependencies")


def _headers(op: Operation, credentials: dict[str, dict[str, str]]) -> dict[str, str]:
    return dict(credentials["public" if op.public else "internal" if op.internal else "org"])


def _send(
    handlers: dict[str, Any],
    op: Operation,
    ctx: Any,
    headers: dict[str, str],
    body: bytes | None = None,
    content_type: str | None = None,
    query: dict[str, str] | None = None,
    path_value: str = "missing1",
) -> tuple[Any, dict[str, Any]]:
    event = api_event(
        "identity/whoami.json",
        headers=headers,
        path=op.url_path(path_value),
        method=op.method.upper(),
        query=query,
    )
    if content_type:
        event["headers"]["Content-Type"] = content_type
    if body is not None:
        # API Gateway (and LocalStack) pass a body that is not UTF-8 on as base64.
        try:
            event["body"] = body.decode()
        except UnicodeDecodeError:
            event["body"], event["isBase64Encoded"] = base64.b64encode(body).decode(), True
    return call(handlers[op.path], event, ctx), event


def test_every_documented_operation_is_served_by_a_function(handlers):
    assert {op.path for op in OPERATIONS} <= set(handlers)
    assert len(WITH_BODY) >= 25


@pytest.mark.parametrize("op", WITH_BODY, ids=lambda op: op.id)
def test_bad_bodies_are_4xx_envelopes_with_the_request_id(op, handlers, credentials, lambda_context):
    for case in bad_bodies(request_fields(DOCUMENT, op)):
        reply, event = _send(
            handlers, op, lambda_context, _headers(op, credentials), case.body, case.content_type
        )
        check_error(reply.status, reply.headers, reply.body, event["requestContext"]["requestId"])
        if op.public and reply.status == 401:
            continue  # the classroom routes check their own credential (a join token) first
        assert (reply.status, reply.body["error"]) == (case.status, case.error), (case.name, reply.body)


@pytest.mark.parametrize("op", POSTED, ids=lambda op: op.id)
def test_a_body_that_is_not_utf8_is_never_a_5xx(op, handlers, credentials, lambda_context):
    reply, event = _send(
        handlers, op, lambda_context, _headers(op, credentials), b'{"a": "\xff"}', "application/json"
    )
    check_error(reply.status, reply.headers, reply.body, event["requestContext"]["requestId"])


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: op.id)
def test_no_credentials_or_unknown_ids_are_4xx_with_the_request_id(
    op, handlers, credentials, lambda_context, request
):
    _with_dependencies(op, request)
    anonymous, event = _send(handlers, op, lambda_context, {}, b"{}" if op.has_body else None)
    check_answer(anonymous.status, anonymous.headers, anonymous.body, event["requestContext"]["requestId"])
    if not op.public and not op.internal:
        # A body is validated before the key is checked (Powertools' validation runs first).
        assert anonymous.status in ((400, 401) if op.has_body else (401,))
    if "{" in op.path:
        unknown, event = _send(handlers, op, lambda_context, _headers(op, credentials))
        check_answer(unknown.status, unknown.headers, unknown.body, event["requestContext"]["requestId"])


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: op.id)
def test_lone_surrogates_in_the_path_or_query_are_never_a_5xx(
    op, handlers, credentials, lambda_context, request
):
    _with_dependencies(op, request)
    # Lone surrogates (what a platform may make of bytes that are not UTF-8) in the query and path.
    body, content_type = (b"{}", "application/json") if op.has_body else (None, None)
    for query, value in (({"x": "\udcff"}, "missing1"), ({"\ud800": "1"}, "missing1"), (None, "a\udcffb")):
        reply, event = _send(
            handlers, op, lambda_context, _headers(op, credentials), body, content_type, query, value
        )
        check_answer(reply.status, reply.headers, reply.body, event["requestContext"]["requestId"])


STREAMS = [op for op in OPERATIONS if op.path.startswith("/v1/cdn/stream/")]


@pytest.mark.parametrize("op", STREAMS, ids=lambda op: op.id)
def test_the_public_stream_routes_answer_every_bad_token_and_id_alike(
    op, handlers, credentials, lambda_context
):
    answers = set()
    for token in ("a.%C3%A9", "a.\u00e9", "a.b", "\u00e9", ""):
        for video_id in ("vid_0000000000000000000000", "missing1", "x"):
            reply, _ = _send(handlers, op, lambda_context, {}, query={"token": token}, path_value=video_id)
            check_error(reply.status, reply.headers, reply.body)
            answers.add((reply.status, reply.body["error"], reply.body["message"]))
    assert answers == {(403, "FORBIDDEN", "The playback token is not valid.")}


def test_an_error_raised_after_counting_carries_the_rate_limit_headers(handlers, credentials, lambda_context):
    by_id = {op.id: op for op in OPERATIONS}
    buffered, _ = _send(handlers, by_id["GET /v1/cdn/videos/{video_id}"], lambda_context, credentials["org"])
    assert buffered.status == 404
    streamed, _ = _send(
        handlers,
        by_id["POST /v1/ai-agent/chat/stream"],
        lambda_context,
        credentials["org"],
        b'{"chatId": "not a valid id!"}',
        "application/json",
    )
    assert streamed.status == 400
    for reply in (buffered, streamed):
        names = {name.lower() for name in reply.headers}
        assert {"ratelimit", "ratelimit-policy", "x-ratelimit-remaining", "x-request-id"} <= names
