"""CORS for the Console: answers to a request from the Console's origin (`CONSOLE_ORIGIN`) carry the
headers its browser needs to read them, errors and streamed routes included; other origins get none.
(API Gateway answers the preflights: tests/unit/test_build_template_aws.py.)"""

from __future__ import annotations

import pytest
from support import api_event, call
from verriflo import settings

CONSOLE = "https://console.school.example"


@pytest.fixture(autouse=True)
def console_origin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONSOLE_ORIGIN", CONSOLE)
    settings.reset_settings()


def _whoami(headers):
    from identity.handler import handler

    return handler, api_event("identity/whoami.json", headers=headers)


def test_the_consoles_browser_may_read_answers_and_errors(org, lambda_context):
    handler, event = _whoami(org.headers | {"Origin": CONSOLE})
    reply = call(handler, event, lambda_context)
    assert reply.status == 200
    assert reply.headers["Access-Control-Allow-Origin"] == CONSOLE
    assert reply.headers["Vary"] == "Origin"
    exposed = reply.headers["Access-Control-Expose-Headers"]
    assert "X-Request-Id" in exposed and "Retry-After" in exposed
    handler, event = _whoami({"Origin": CONSOLE, "Authorization": "Bearer expired.or.wrong"})
    refused = call(handler, event, lambda_context)
    assert refused.status == 401 and refused.headers["Access-Control-Allow-Origin"] == CONSOLE


@pytest.mark.parametrize(
    "origin", [None, "https://evil.example", "https://console.school.example.evil.example"]
)
def test_other_origins_get_no_cors_headers(org, lambda_context, origin):
    handler, event = _whoami(org.headers | ({"Origin": origin} if origin else {}))
    reply = call(handler, event, lambda_context)
    assert reply.status == 200
    assert not any(name.lower().startswith("access-control-") for name in reply.headers)


def test_the_streamed_routes_answer_the_console_too(org, lambda_context):
    from ai_agent.handler import handler

    # no credits: a 402 from the streamed app, which must still be readable by the Console
    event = api_event(
        "ai_agent/chat_stream.json", headers=org.headers | {"Origin": CONSOLE}, body={"message": "hello"}
    )
    reply = call(handler, event, lambda_context)
    assert 400 <= reply.status < 500
    assert reply.headers["access-control-allow-origin"] == CONSOLE
