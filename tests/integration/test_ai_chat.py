"""The AI API's chat: whole and streamed answers, history by chatId, usage, and every way a request
is refused before a model is called."""

from __future__ import annotations

import re

import pytest
from ai_agent import answering, handler, models
from ai_support import (
    ScriptedProvider,
    ai_env,  # noqa: F401 - an autouse fixture
    b64,
    chat_route,
    grant,
    lines,
    png_with_text,
)
from support import api_event, call
from verriflo_ai import providers
from verriflo_ai import settings as ai_settings_module


@pytest.fixture
def model(monkeypatch: pytest.MonkeyPatch) -> ScriptedProvider:
    """A scripted provider in place of the configured one, so tests can see whether it was called."""
    scripted = ScriptedProvider(pieces=["Energy ", "is made ", "in mitochondria."])
    monkeypatch.setattr(answering, "provider", lambda: scripted)
    return scripted


def chat(org, ctx, body, stream=False):
    name = "ai_agent/chat_stream.json" if stream else "ai_agent/chat.json"
    return call(handler.handler, api_event(name, headers=org.headers, body=body), ctx)


def test_chat_answers_in_the_envelope_and_keeps_the_history(org, lambda_context, model):
    grant(org.id)
    reply = chat(org, lambda_context, {"chatId": "c1", "message": "Where is energy made?"})
    assert reply.status == 200, reply.body
    assert reply.data["text"] == "Energy is made in mitochondria."
    assert reply.data["usage"] == {"inputTokens": 11, "outputTokens": 3, "totalTokens": 14, "credits": 0.007}
    assert reply.data["requestModality"] == "text" and reply.data["responseModality"] == "text"
    again = chat(org, lambda_context, {"chatId": "c1", "message": "And in plants?"})
    assert again.status == 200
    # The second call saw the first exchange as history.
    assert [m.text for m in model.calls[1].history] == [
        "Where is energy made?",
        "Energy is made in mitochondria.",
    ]
    read = chat_route(org, lambda_context, "read", "c1")
    assert read.status == 200
    assert [m["role"] for m in read.data["messages"]] == ["user", "assistant", "user", "assistant"]
    assert 0 < read.data["expiresIn"] <= 7 * 86400


def test_stream_is_ndjson_text_usage_done(org, lambda_context, model):
    grant(org.id)
    reply = chat(org, lambda_context, {"chatId": "s1", "message": "Where is energy made?"}, stream=True)
    assert reply.status == 200
    assert reply.headers["content-type"] == "application/x-ndjson"
    assert reply.headers.get("x-request-id")
    assert reply.headers.get("ratelimit-policy", "").startswith('"ai"')
    events = lines(reply.body)
    assert [e["type"] for e in events] == ["text", "text", "text", "usage", "done"]
    assert "".join(e["text"] for e in events if e["type"] == "text") == "Energy is made in mitochondria."
    assert events[3]["usage"]["inputTokens"] == 11


def test_a_chat_sent_without_chat_id_is_started_kept_and_can_be_continued(org, lambda_context, model):
    grant(org.id)
    whole = chat(org, lambda_context, {"message": "Where is energy made?"})
    assert whole.status == 200, whole.body
    started = whole.data["chatId"]
    assert re.fullmatch(models.ID_PATTERN, started)
    events = lines(chat(org, lambda_context, {"message": "Where is energy made?"}, stream=True).body)
    assert events[0]["type"] == "chat" and set(events[0]) == {"type", "chatId"}
    assert [e["type"] for e in events[1:]] == ["text", "text", "text", "usage", "done"]
    streamed = events[0]["chatId"]
    assert re.fullmatch(models.ID_PATTERN, streamed) and streamed != started
    for chat_id in (started, streamed):
        read = chat_route(org, lambda_context, "read", chat_id)
        assert read.status == 200, read.body
        assert [m["text"] for m in read.data["messages"]] == [
            "Where is energy made?",
            "Energy is made in mitochondria.",
        ]
    again = chat(org, lambda_context, {"chatId": started, "message": "And in plants?"})
    assert again.status == 200 and again.data["chatId"] == started
    assert [m.text for m in model.calls[-1].history] == [
        "Where is energy made?",
        "Energy is made in mitochondria.",
    ]
    listed = call(handler.handler, api_event("ai_agent/list_chats.json", headers=org.headers), lambda_context)
    assert {c["chatId"] for c in listed.data["items"]} == {started, streamed}


def test_another_orgs_chat_is_not_found_and_stays_intact(org, other_org, lambda_context, model):
    grant(org.id)
    assert chat(org, lambda_context, {"chatId": "private", "message": "secret plans"}).status == 200
    for name, _method in (("ai_agent/read_chat.json", "GET"), ("ai_agent/delete_chat.json", "DELETE")):
        reply = call(
            handler.handler,
            api_event(
                name,
                headers=other_org.headers,
                path="/v1/ai-agent/chats/private",
                path_params={"chat_id": "private"},
            ),
            lambda_context,
        )
        assert reply.status == 404, reply.body
        assert reply.body["error"] == "NOT_FOUND" and "secret" not in str(reply.body)
    # Another org continuing "the same" chatId starts its own chat and sees nothing of ours.
    grant(other_org.id)
    assert chat(other_org, lambda_context, {"chatId": "private", "message": "hello"}).status == 200
    assert model.calls[-1].history == ()
    mine = chat_route(org, lambda_context, "read", "private")
    assert [m["text"] for m in mine.data["messages"]][0] == "secret plans"
    deleted = chat_route(org, lambda_context, "delete", "private")
    assert deleted.status == 200 and deleted.data == {"chatId": "private", "deleted": True}


def test_without_a_key_nothing_is_answered(lambda_context, model):
    reply = call(
        handler.handler,
        api_event("ai_agent/chat_stream.json", headers={}, body={"message": "hi"}),
        lambda_context,
    )
    assert reply.status == 401 and reply.body["error"] == "UNAUTHORIZED"
    assert model.calls == []


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"message": "hi", "audio": "not base64!!"}, 400, "VALIDATION_ERROR"),
        ({"message": "hi", "image": "%%%", "imageMimeType": "image/png"}, 400, "VALIDATION_ERROR"),
        (
            {"message": "hi", "image": b64(b"GIF89a....."), "imageMimeType": "image/tiff"},
            415,
            "UNSUPPORTED_MEDIA_TYPE",
        ),
        ({"message": "hi", "audio": b64(b"this is not audio at all")}, 415, "UNSUPPORTED_MEDIA_TYPE"),
        (
            {"message": "hi", "image": b64(png_with_text("x")), "imageMimeType": "image/jpeg"},
            400,
            "VALIDATION_ERROR",
        ),
        ({"message": "hi", "audio": b64(b"RIFF" + b"\0" * 3000 + b"WAVE")}, 413, "PAYLOAD_TOO_LARGE"),
        (
            {
                "message": "hi",
                "image": b64(b"\x89PNG\r\n\x1a\n" + b"\0" * 3000),
                "imageMimeType": "image/png",
            },
            413,
            "PAYLOAD_TOO_LARGE",
        ),
        ({"message": "x" * 3000}, 413, "PAYLOAD_TOO_LARGE"),
        ({"message": "hi", "responseModality": "video"}, 400, "VALIDATION_ERROR"),
        ({"message": "hi", "responseModality": "audio", "voiceName": "klingon"}, 400, "VALIDATION_ERROR"),
        ({"chatId": "has spaces", "message": "hi"}, 400, "VALIDATION_ERROR"),
        ({}, 400, "VALIDATION_ERROR"),
        ({"message": "hi", "unknownField": 1}, 400, "VALIDATION_ERROR"),
    ],
)
def test_bad_input_is_refused_before_any_model_call(
    org, lambda_context, model, monkeypatch, body, status, code, stream
):
    monkeypatch.setenv("AI_MAX_AUDIO_BYTES", "2048")
    monkeypatch.setenv("AI_MAX_IMAGE_BYTES", "2048")
    monkeypatch.setenv("AI_MAX_MESSAGE_CHARS", "2000")
    ai_settings_module.reset_settings()
    grant(org.id)
    reply = chat(org, lambda_context, body, stream=stream)
    assert (reply.status, reply.body["error"]) == (status, code), reply.body
    assert reply.body["success"] is False and reply.body["message"]
    assert model.calls == []


def test_no_credits_is_402_before_any_model_call(org, lambda_context, model):
    reply = chat(org, lambda_context, {"message": "hi"}, stream=True)
    assert reply.status == 402 and reply.body["error"] == "INSUFFICIENT_CREDITS"
    assert model.calls == []


@pytest.mark.parametrize("fail_after", [0, 2])
def test_a_provider_failing_mid_stream_sends_error_then_done_and_keeps_no_turn(
    org, lambda_context, monkeypatch, fail_after
):
    grant(org.id)
    good = ScriptedProvider(pieces=["First answer."])
    monkeypatch.setattr(answering, "provider", lambda: good)
    assert chat(org, lambda_context, {"chatId": "f1", "message": "first"}).status == 200
    failing = ScriptedProvider(pieces=["Half ", "an ", "answer"], fail_after=fail_after)
    monkeypatch.setattr(answering, "provider", lambda: failing)
    events = lines(chat(org, lambda_context, {"chatId": "f1", "message": "second"}, stream=True).body)
    assert [e["type"] for e in events][-2:] == ["error", "done"]
    assert events[-2]["error"] == "UPSTREAM_ERROR" and events[-2]["message"]
    assert [e["type"] for e in events].count("text") == fail_after
    assert "usage" not in [e["type"] for e in events]
    read = chat_route(org, lambda_context, "read", "f1")
    assert [m["text"] for m in read.data["messages"]] == ["first", "First answer."]
    whole = chat(org, lambda_context, {"chatId": "f1", "message": "third"})
    assert whole.status == 502 and whole.body["error"] == "UPSTREAM_ERROR"


def test_redis_down_is_503_before_any_model_call(org, lambda_context, model, monkeypatch):
    from servers import free_port
    from verriflo import cache, ratelimit, settings
    from verriflo.auth import authenticate
    from verriflo.errors import ServiceUnavailable

    grant(org.id)
    ctx = authenticate(org.headers)
    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    monkeypatch.setenv("REDIS_TIMEOUT_S", "0.2")
    settings.reset_settings()
    cache.reset_client()
    ratelimit.reset_script()
    # Through the function (the rate limiter is the first to notice) and in the history path itself.
    reply = chat(org, lambda_context, {"chatId": "r1", "message": "hi"}, stream=True)
    assert reply.status == 503 and reply.body["error"] == "SERVICE_UNAVAILABLE"
    assert reply.headers.get("Retry-After") or reply.headers.get("retry-after")
    with pytest.raises(ServiceUnavailable):
        answering.prepare_chat(ctx, models.ChatRequest(chat_id="r1", message="hi"), "req-1")
    assert model.calls == []


def test_offline_default_says_plainly_it_has_no_model_without_a_knowledge_base(org, lambda_context):
    grant(org.id)
    reply = chat(org, lambda_context, {"message": "What is the capital of France?"})
    assert reply.status == 200
    assert reply.data["text"] == providers.NO_KNOWLEDGE
    assert "Paris" not in reply.data["text"]


def test_internal_generate_needs_the_dispatch_secret(org, lambda_context, model):
    from verriflo import secrets as secrets_module

    grant(org.id)
    for name in ("ai_agent/generate.json", "ai_agent/generate_stream.json"):
        refused = call(
            handler.handler, api_event(name, body={"orgId": org.id, "message": "hi"}), lambda_context
        )
        assert refused.status == 403 and refused.body["error"] == "FORBIDDEN"
    assert model.calls == []
    secret = secrets_module.get_secret("verriflo/dispatch-secret")
    event = api_event("ai_agent/generate.json", body={"orgId": org.id, "message": "hi"})
    event["headers"]["X-Dispatch-Secret"] = secret
    reply = call(handler.handler, event, lambda_context)
    assert reply.status == 200 and reply.data["text"] == "Energy is made in mitochondria."
    event = api_event("ai_agent/generate_stream.json", body={"orgId": org.id, "message": "hi"})
    event["headers"]["X-Dispatch-Secret"] = secret
    streamed = call(handler.handler, event, lambda_context)
    assert [e["type"] for e in lines(streamed.body)][-2:] == ["usage", "done"]


def test_an_unexpected_crash_mid_stream_still_ends_with_error_then_done(org, lambda_context, monkeypatch):
    grant(org.id)

    class Broken:
        name = "broken"

        def stream(self, request):
            yield providers.TextDelta("Half")
            raise RuntimeError("a bug, with internal details")

    monkeypatch.setattr(answering, "provider", lambda: Broken())
    reply = chat(org, lambda_context, {"chatId": "x1", "message": "hi"}, stream=True)
    events = lines(reply.body)
    assert [e["type"] for e in events] == ["text", "error", "done"]
    assert events[1]["error"] == "INTERNAL_ERROR" and "internal details" not in events[1]["message"]
    assert chat_route(org, lambda_context, "read", "x1").status == 404


def test_history_is_bounded_and_expires(org, lambda_context, model, monkeypatch):
    from verriflo.cache import redis_client

    monkeypatch.setenv("AI_HISTORY_TURNS", "4")
    monkeypatch.setenv("AI_HISTORY_TTL_S", "600")
    ai_settings_module.reset_settings()
    grant(org.id)
    for message in ("one", "two", "three"):
        assert chat(org, lambda_context, {"chatId": "b1", "message": message}).status == 200
    read = chat_route(org, lambda_context, "read", "b1")
    assert [m["text"] for m in read.data["messages"] if m["role"] == "user"] == ["two", "three"]
    assert len(read.data["messages"]) == 4 and 0 < read.data["expiresIn"] <= 600
    # The key names the org: another org's chat of the same id is another key.
    assert redis_client().exists(f"ai:chat:{org.id}:b1") == 1


def list_chats(org, ctx, **query):
    return call(
        handler.handler,
        api_event(
            "ai_agent/list_chats.json", headers=org.headers, query={k: str(v) for k, v in query.items()}
        ),
        ctx,
    )


def test_chat_list_is_newest_first_paginated_and_per_org(org, other_org, lambda_context, model):
    grant(org.id)
    grant(other_org.id)
    for chat_id in ("a1", "a2", "a3"):
        assert (
            chat(org, lambda_context, {"chatId": chat_id, "message": f"First question of {chat_id}?"}).status
            == 200
        )
    assert chat(org, lambda_context, {"chatId": "a1", "message": "A follow-up?"}).status == 200
    assert chat(other_org, lambda_context, {"chatId": "theirs", "message": "Secret plans?"}).status == 200

    first = list_chats(org, lambda_context, limit=2)
    assert first.status == 200, first.body
    assert [c["chatId"] for c in first.data["items"]] == ["a1", "a3"]
    top = first.data["items"][0]
    assert top["title"] == "First question of a1?" and top["turns"] == 2
    assert top["preview"] == "Energy is made in mitochondria."
    assert top["updatedAt"] >= top["createdAt"]
    second = list_chats(org, lambda_context, limit=2, cursor=first.data["nextCursor"])
    assert [c["chatId"] for c in second.data["items"]] == ["a2"] and second.data["nextCursor"] is None

    # Another org sees only its own chat, never this org's titles or previews.
    theirs = list_chats(other_org, lambda_context)
    assert [c["chatId"] for c in theirs.data["items"]] == ["theirs"]
    assert "question of" not in theirs.body

    # A deleted chat leaves the list.
    deleted = chat_route(org, lambda_context, "delete", "a3")
    assert deleted.status == 200
    assert [c["chatId"] for c in list_chats(org, lambda_context).data["items"]] == ["a1", "a2"]


def test_chat_list_pages_through_chats_updated_in_the_same_millisecond(org, lambda_context, monkeypatch):
    from ai_agent import history

    monkeypatch.setattr(history.time, "time_ns", lambda: 1_795_878_000_000_000_000)
    monkeypatch.setattr(history.time, "time", lambda: 1_795_878_000.0)
    for chat_id in ("t1", "t2", "t3", "t4", "t5"):
        history.append(
            org.id,
            chat_id,
            [history.StoredMessage("user", "q", "2026-11-28T00:00:00+00:00")],
            10,
            600,
            title="q",
            preview="a",
            stamp="2026-11-28T00:00:00+00:00",
        )
    seen, cursor = [], None
    while True:
        page = list_chats(org, lambda_context, limit=2, **({"cursor": cursor} if cursor else {}))
        assert page.status == 200, page.body
        seen += [c["chatId"] for c in page.data["items"]]
        cursor = page.data["nextCursor"]
        if cursor is None:
            break
    assert seen == ["t5", "t4", "t3", "t2", "t1"]


def test_chat_list_refuses_a_forged_cursor_and_a_bad_limit(org, lambda_context):
    assert list_chats(org, lambda_context, cursor="not-a-cursor").status == 400
    assert list_chats(org, lambda_context, limit=0).status == 400
    assert list_chats(org, lambda_context, limit=500).status == 400
