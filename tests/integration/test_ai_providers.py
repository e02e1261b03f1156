"""The OpenAI-compatible provider against a local stand-in that speaks the real wire protocol
(`POST /v1/chat/completions`, SSE `chat.completion.chunk` frames, `data: [DONE]`), including the
ways a real endpoint fails: an error status, a connection cut mid-stream, a stall past the timeout."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from verriflo_ai.providers import (
    BedrockProvider,
    GenerationRequest,
    Message,
    OpenAICompatibleProvider,
    Passage,
    ProviderError,
    TextDelta,
    Usage,
)


class StandIn(BaseHTTPRequestHandler):
    """Answers chat completions as OpenAI does; `mode` picks a behaviour."""

    mode = "ok"
    seen: list[dict] = []

    def log_message(self, *args: object) -> None:  # keep test output clean
        pass

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        if self.mode == "error":
            self.send_response(429)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"error": {"message": "rate limited", "type": "rate_limit"}}')
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        words = ["Mito", "chondria ", "make ", "ATP [1]."]
        for i, word in enumerate(words):
            if self.mode == "cut" and i == 2:
                self.wfile.flush()
                self.connection.shutdown(2)  # the connection drops mid-answer
                return
            if self.mode == "stall" and i == 1:
                time.sleep(1.5)
            chunk = {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "stand-in-1",
                "choices": [
                    {
                        "index": 0,
                        "delta": {"content": word} | ({"role": "assistant"} if i == 0 else {}),
                        "finish_reason": None,
                    }
                ],
            }
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()
        final = {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "stand-in-1",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        }
        usage = {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "stand-in-1",
            "choices": [],
            "usage": {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49},
        }
        self.wfile.write(
            f"data: {json.dumps(final)}\n\n: keep-alive comment\n\ndata: {json.dumps(usage)}\n\n"
            "data: [DONE]\n\n".encode()
        )
        self.wfile.flush()


@pytest.fixture
def stand_in() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    StandIn.seen = []
    StandIn.mode = "ok"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


REQUEST = GenerationRequest(
    question="Where is ATP made?",
    history=(Message("user", "hi"), Message("assistant", "hello")),
    passages=(Passage("The mitochondria makes ATP.", 0.8, "kb_1", "doc_1", "Bio", 0),),
    grounded=True,
)


def test_streams_deltas_then_the_reported_usage(stand_in):
    provider = OpenAICompatibleProvider(
        stand_in, "stand-in-1", "sk-test-not-real", timeout_s=5, max_tokens=200
    )
    events = list(provider.stream(REQUEST))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["Mito", "chondria ", "make ", "ATP [1]."]
    assert events[-1] == Usage(42, 7, model="stand-in-1")
    sent = StandIn.seen[0]
    assert sent["path"] == "/v1/chat/completions" and sent["auth"] == "Bearer sk-test-not-real"
    body = sent["body"]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 200 and body["model"] == "stand-in-1"
    assert [m["role"] for m in body["messages"]] == ["system", "user", "assistant", "user"]
    # The grounding passages travel with the question, numbered for citation.
    assert "[1] (Bio) The mitochondria makes ATP." in body["messages"][-1]["content"]


@pytest.mark.parametrize("mode", ["error", "cut", "stall"])
def test_failures_become_provider_errors_after_what_was_produced(stand_in, mode):
    StandIn.mode = mode
    provider = OpenAICompatibleProvider(stand_in, "stand-in-1", None, timeout_s=0.5, max_tokens=100)
    produced = []
    with pytest.raises(ProviderError) as failure:
        for event in provider.stream(REQUEST):
            produced.append(event)
    assert "sk-" not in str(failure.value)
    assert all(isinstance(e, TextDelta) for e in produced)
    assert len(produced) == {"error": 0, "cut": 2, "stall": 1}[mode]


def test_a_chat_through_the_api_streams_from_the_openai_compatible_endpoint(
    stand_in, org, lambda_context, monkeypatch
):
    from ai_agent import handler
    from ai_support import grant, lines
    from support import api_event, call
    from verriflo_ai import settings as ai_settings_module

    monkeypatch.setenv("AI_PROVIDER", "openai")
    monkeypatch.setenv("AI_OPENAI_BASE_URL", stand_in)
    monkeypatch.setenv("AI_OPENAI_MODEL", "stand-in-1")
    ai_settings_module.reset_settings()
    grant(org.id)
    try:
        events = lines(
            call(
                handler.handler,
                api_event(
                    "ai_agent/chat_stream.json",
                    headers=org.headers,
                    body={"chatId": "o1", "message": "Where is ATP made?"},
                ),
                lambda_context,
            ).body
        )
    finally:
        ai_settings_module.reset_settings()
    assert "".join(e.get("text", "") for e in events if e["type"] == "text") == "Mitochondria make ATP [1]."
    assert events[-2] == {
        "type": "usage",
        "usage": {"inputTokens": 42, "outputTokens": 7, "totalTokens": 49, "credits": 0.025},
    }


# --- Amazon Bedrock, over its real wire protocol ------------------------------------------------------


def _event_message(headers: dict[str, str], payload: bytes) -> bytes:
    """One message of the AWS event-stream encoding (the framing of `converse_stream` answers)."""
    import struct
    import zlib

    encoded = b"".join(
        struct.pack("B", len(k)) + k.encode() + b"\x07" + struct.pack(">H", len(v)) + v.encode()
        for k, v in headers.items()
    )
    total = 12 + len(encoded) + len(payload) + 4
    prelude = struct.pack(">II", total, len(encoded))
    prelude += struct.pack(">I", zlib.crc32(prelude))
    message = prelude + encoded + payload
    return message + struct.pack(">I", zlib.crc32(message))


def _event(kind: str, body: dict) -> bytes:
    return _event_message(
        {":event-type": kind, ":content-type": "application/json", ":message-type": "event"},
        json.dumps(body).encode(),
    )


class BedrockStandIn(BaseHTTPRequestHandler):
    """Answers `POST /model/<id>/converse-stream` with an event stream."""

    fail = False
    seen: list[dict] = []

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append({"path": self.path, "body": body})
        frames = [
            _event("messageStart", {"role": "assistant"}),
            _event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "ATP is made "}}),
        ]
        if self.fail:
            frames.append(
                _event_message(
                    {
                        ":exception-type": "modelStreamErrorException",
                        ":content-type": "application/json",
                        ":message-type": "exception",
                    },
                    b'{"message": "boom", "originalStatusCode": 500}',
                )
            )
        else:
            frames += [
                _event(
                    "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "in mitochondria [1]."}}
                ),
                _event("contentBlockStop", {"contentBlockIndex": 0}),
                _event("messageStop", {"stopReason": "end_turn"}),
                _event(
                    "metadata",
                    {
                        "usage": {"inputTokens": 120, "outputTokens": 9, "totalTokens": 129},
                        "metrics": {"latencyMs": 300},
                    },
                ),
            ]
        data = b"".join(frames)
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.amazon.eventstream")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def bedrock(aws_env, monkeypatch) -> Iterator[type[BedrockStandIn]]:
    from verriflo import aws

    server = ThreadingHTTPServer(("127.0.0.1", 0), BedrockStandIn)
    BedrockStandIn.seen, BedrockStandIn.fail = [], False
    threading.Thread(target=server.serve_forever, daemon=True).start()
    # boto3 reads service endpoints from the environment, as in production (no endpoint_url in code).
    monkeypatch.setenv("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", f"http://127.0.0.1:{server.server_address[1]}")
    aws.reset_clients()
    yield BedrockStandIn
    aws.reset_clients()
    server.shutdown()
    server.server_close()


def test_bedrock_streams_text_then_the_reported_usage(bedrock):
    import moto

    with moto.mock_aws(config={"core": {"passthrough": {"urls": [r"http://127\.0\.0\.1:\d+/.*"]}}}):
        events = list(BedrockProvider("m-1", 300).stream(REQUEST))
    assert [e.text for e in events if isinstance(e, TextDelta)] == ["ATP is made ", "in mitochondria [1]."]
    assert events[-1] == Usage(120, 9, model="m-1")
    sent = bedrock.seen[0]
    assert sent["path"] == "/model/m-1/converse-stream"
    assert sent["body"]["inferenceConfig"] == {"maxTokens": 300}
    assert "never instructions" in sent["body"]["system"][0]["text"]
    assert [m["role"] for m in sent["body"]["messages"]] == ["user", "assistant", "user"]


def test_bedrock_error_mid_stream_is_a_provider_error_after_the_text_so_far(bedrock):
    import moto

    bedrock.fail = True
    produced = []
    with moto.mock_aws(config={"core": {"passthrough": {"urls": [r"http://127\.0\.0\.1:\d+/.*"]}}}):
        with pytest.raises(ProviderError):
            for event in BedrockProvider("m-1", 300).stream(REQUEST):
                produced.append(event)
    assert produced == [TextDelta("ATP is made ")]


def test_a_provider_timing_out_mid_answer_ends_the_stream_with_error_then_done(
    stand_in, org, lambda_context, monkeypatch
):
    from ai_agent import handler
    from ai_support import chat_route, grant, lines
    from support import api_event, call
    from verriflo_ai import settings as ai_settings_module

    StandIn.mode = "stall"
    monkeypatch.setenv("AI_PROVIDER", "openai")
    monkeypatch.setenv("AI_OPENAI_BASE_URL", stand_in)
    monkeypatch.setenv("AI_PROVIDER_TIMEOUT_S", "0.5")
    ai_settings_module.reset_settings()
    grant(org.id)
    try:
        reply = call(
            handler.handler,
            api_event(
                "ai_agent/chat_stream.json",
                headers=org.headers,
                body={"chatId": "t1", "message": "Where is ATP made?"},
            ),
            lambda_context,
        )
        history = chat_route(org, lambda_context, "read", "t1")
    finally:
        ai_settings_module.reset_settings()
    events = lines(reply.body)
    assert [e["type"] for e in events] == ["text", "error", "done"]
    assert events[1] == {
        "type": "error",
        "error": "UPSTREAM_ERROR",
        "message": "The model provider timed out.",
    }
    assert history.status == 404  # no half-written turn
