"""Streaming for real: the ASGI app under a real uvicorn on loopback (as in AWS behind the Lambda
Web Adapter) sends each NDJSON line as it is produced, so the first line arrives long before the
answer is complete; errors before the stream are ordinary envelopes."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from ai_agent import answering, streaming
from ai_support import ScriptedProvider, grant
from servers import asgi_server


@pytest.fixture
def server() -> Iterator[str]:
    with asgi_server(streaming.app, lifespan="on") as url:
        yield url


def test_the_first_line_arrives_before_the_answer_is_complete(server, org, monkeypatch):
    grant(org.id)
    # Each piece after the first is produced only once the previous line reached the client.
    model = ScriptedProvider(pieces=["One ", "two ", "three ", "four ", "five."], paced=True)
    monkeypatch.setattr(answering, "provider", lambda: model)
    arrivals: list[tuple[float, str]] = []
    start = time.perf_counter()
    with httpx.stream(
        "POST",
        f"{server}/v1/ai-agent/chat/stream",
        headers=org.headers,
        json={"chatId": "live", "message": "count"},
        timeout=30,
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/x-ndjson"
        assert response.headers["x-request-id"] and response.headers["ratelimit-policy"].startswith('"ai"')
        for line in response.iter_lines():
            arrivals.append((time.perf_counter(), line))
            if '"type":"text"' in line:
                model.release()
    first, last = arrivals[0][0], arrivals[-1][0]
    assert '"type":"text"' in arrivals[0][1] and arrivals[-1][1] == '{"type":"done"}'
    # The provider could not finish before the first line arrived: the first line did not wait for it.
    assert model.first_token_at is not None and model.finished_at is not None
    assert first < model.finished_at, (first - start, model.finished_at - start)
    assert last > model.finished_at
    # Lines arrived one by one as produced, not in one burst at the end: each before the next piece.
    text_times = [t for t, line in arrivals if '"type":"text"' in line]
    assert len(text_times) == 5 and len(model.produced_at) == 5
    following = model.produced_at[1:]
    assert all(arrived < produced for arrived, produced in zip(text_times, following, strict=False))


def test_errors_before_the_stream_are_envelopes_with_status(server, org, monkeypatch):
    model = ScriptedProvider(pieces=["x"])
    monkeypatch.setattr(answering, "provider", lambda: model)
    unauthenticated = httpx.post(f"{server}/v1/ai-agent/chat/stream", json={"message": "hi"})
    assert unauthenticated.status_code == 401 and unauthenticated.json()["error"] == "UNAUTHORIZED"
    assert unauthenticated.headers["x-request-id"]
    broke = httpx.post(f"{server}/v1/ai-agent/chat/stream", headers=org.headers, json={"message": "hi"})
    assert broke.status_code == 402 and broke.json() == {
        "success": False,
        "message": "Insufficient credits for AI requests; add credits to continue.",
        "error": "INSUFFICIENT_CREDITS",
    }
    bad_json = httpx.post(
        f"{server}/v1/ai-agent/chat/stream",
        headers=org.headers | {"content-type": "application/json"},
        content=b"{not json",
    )
    assert bad_json.status_code == 400 and bad_json.json()["error"] == "VALIDATION_ERROR"
    too_big = httpx.post(f"{server}/v1/ai-agent/chat/stream", headers=org.headers, content=b"x" * 6_000_001)
    assert too_big.status_code == 413 and too_big.json()["error"] == "PAYLOAD_TOO_LARGE"
    wrong_method = httpx.get(f"{server}/v1/ai-agent/chat/stream", headers=org.headers)
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "POST"
    assert httpx.get(f"{server}/nope").status_code == 404
    assert model.calls == []
