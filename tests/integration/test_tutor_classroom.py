"""The classroom page's tutor routes: the participant's join token (minted by the rooms join flow) is
the only credential; it opens its own room only; teachers read every exchange and switch the tutor,
students ask and read their own; CORS for the page's origin. Streaming for real under uvicorn."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from ai_support import ScriptedProvider
from ai_tutor import answering, streaming
from ai_tutor.handler import handler
from servers import asgi_server
from support import api_event, call
from tutor_support import Classroom, add_notes, end_class, open_class, sse_events

pytest_plugins = ("livekit_support", "tutor_support")

STATE, SETTINGS, CHAT = (
    "/v1/ai-tutor/classroom/state",
    "/v1/ai-tutor/classroom/settings",
    "/v1/ai-tutor/classroom/chat/stream",
)


def page(name, token, ctx, body=None, method=None):
    headers = {"Authorization": f"Bearer {token}", "Origin": "http://127.0.0.1:4566"} if token else {}
    return call(handler, api_event(f"ai_tutor/{name}.json", headers=headers, body=body, method=method), ctx)


def test_a_student_asks_with_the_join_token_and_sees_only_their_exchanges(org, livekit, lambda_context):
    from tutor_support import join

    room = open_class(org, livekit, lambda_context, students=("s-1", "s-2"))
    add_notes(room, lambda_context)
    other = join(org, lambda_context, room.room_id, "s-2", "STUDENT")
    reply = page("classroom_chat", room.student_token, lambda_context, {"text": "What is inertia?"})
    assert reply.status == 200, reply.body
    assert reply.headers["access-control-allow-origin"] == "*" and reply.headers["content-type"].startswith(
        "text/event-stream"
    )
    events = sse_events(reply.body)
    assert "tendency of a body" in "".join(e["text"] for e in events[:-2])
    page("classroom_chat", other, lambda_context, {"text": "What unit is force measured in?"})
    mine = page("classroom_state", room.student_token, lambda_context).data
    assert mine["role"] == "STUDENT" and mine["enabled"] is True and mine["title"] == "Physics 101"
    assert [e["question"] for e in mine["exchanges"]] == ["What is inertia?"]
    teacher = page("classroom_state", room.teacher_token, lambda_context).data
    assert teacher["role"] == "TEACHER" and len(teacher["exchanges"]) == 2


def test_the_teacher_switches_the_tutor_from_the_page_and_a_student_cannot(
    classroom: Classroom, lambda_context
):
    refused = page("classroom_settings", classroom.student_token, lambda_context, {"enabled": False})
    assert refused.status == 403 and refused.headers["access-control-allow-origin"] == "*"
    off = page(
        "classroom_settings", classroom.teacher_token, lambda_context, {"enabled": False, "mode": "hints"}
    )
    assert off.status == 200 and off.data["enabled"] is False and off.data["mode"] == "hints"
    asked = page("classroom_chat", classroom.student_token, lambda_context, {"text": "What is inertia?"})
    assert asked.status == 403 and "switched the tutor off" in asked.body["message"]
    assert page("classroom_state", classroom.student_token, lambda_context).data["enabled"] is False


def test_the_teacher_token_cannot_ask_and_a_finished_class_refuses_questions(
    classroom: Classroom, lambda_context
):
    assert page("classroom_chat", classroom.teacher_token, lambda_context, {"text": "Hi?"}).status == 403
    end_class(classroom, lambda_context)
    reply = page("classroom_chat", classroom.student_token, lambda_context, {"text": "What is inertia?"})
    assert reply.status == 403 and "ended" in reply.body["message"]
    assert (
        page("classroom_settings", classroom.teacher_token, lambda_context, {"enabled": False}).status == 403
    )


def test_forged_expired_missing_and_org_keys_are_not_room_credentials(
    classroom: Classroom, livekit, lambda_context
):
    from datetime import timedelta

    from livekit.api import AccessToken, VideoGrants

    grants = VideoGrants(room_join=True, room=f"{classroom.org.id}.{classroom.room_id}")
    forged = AccessToken(livekit.api_key, "not-the-secret").with_identity("s-1").with_grants(grants).to_jwt()
    expired = (
        AccessToken(livekit.api_key, livekit.api_secret)
        .with_identity("s-1")
        .with_grants(grants)
        .with_ttl(timedelta(seconds=-60))
        .to_jwt()
    )
    no_room = AccessToken(livekit.api_key, livekit.api_secret).with_identity("s-1").to_jwt()
    for token in (forged, expired, no_room, classroom.org.key, "", "a.b.c"):
        reply = page("classroom_chat", token, lambda_context, {"text": "What is inertia?"})
        assert reply.status == 401 and reply.body["error"] == "UNAUTHORIZED", reply.body
        assert reply.headers["access-control-allow-origin"] == "*"
    from tutor_support import interactions

    assert interactions(classroom.org.id) == []


def test_a_token_opens_only_its_own_room_of_its_own_org(
    classroom: Classroom, other_org, livekit, lambda_context
):
    theirs = open_class(other_org, livekit, lambda_context, room_id="chem-9", title="Chemistry 9")
    add_notes(classroom, lambda_context)
    page("classroom_chat", classroom.student_token, lambda_context, {"text": "What is inertia?"})
    state = page("classroom_state", theirs.teacher_token, lambda_context).data
    assert state["roomId"] == "chem-9" and state["exchanges"] == []  # never the other org's exchanges
    # A room credential cannot name another room: the body has no roomId, and adding one is refused.
    extra = page(
        "classroom_chat", theirs.student_token, lambda_context, {"text": "Hi?", "roomId": "physics-101"}
    )
    assert extra.status == 400


def test_the_browser_preflight_is_answered_for_the_page_routes(lambda_context):
    for path in (STATE, SETTINGS, CHAT):
        event = api_event(
            "ai_tutor/classroom_state.json",
            headers={"Origin": "http://127.0.0.1:4566"},
            path=path,
            method="OPTIONS",
        )
        reply = call(handler, event, lambda_context)
        assert reply.status == 200 and "Authorization" in reply.headers["access-control-allow-headers"]
        assert "POST" in reply.headers["access-control-allow-methods"]


@pytest.fixture
def server() -> Iterator[str]:
    with asgi_server(streaming.app) as url:
        yield url


def test_events_leave_as_they_are_produced_over_real_http(classroom: Classroom, server, monkeypatch):
    # Each piece after the first is produced only once the previous event reached the client.
    model = ScriptedProvider(pieces=["Inertia ", "keeps ", "bodies ", "moving ", "steadily."], paced=True)
    monkeypatch.setattr(answering, "provider", lambda: model)
    arrivals: list[tuple[float, str]] = []
    body = {"roomId": classroom.room_id, "studentUid": "s-1", "text": "What is inertia?"}
    with httpx.stream(
        "POST", f"{server}/v1/ai-tutor/chat/stream", headers=classroom.headers, json=body, timeout=30
    ) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        assert (
            response.headers["cache-control"] == "no-cache" and response.headers["connection"] == "keep-alive"
        )
        for line in response.iter_lines():
            if line:
                arrivals.append((time.perf_counter(), line))
                if '"usage":null' in line:
                    model.release()
    assert arrivals[-1][1] == "data: [DONE]" and arrivals[0][1] == 'data: {"text":"Inertia ","usage":null}'
    assert model.finished_at is not None and arrivals[0][0] < model.finished_at
    texts = [t for t, line in arrivals if '"text":"' in line and '"usage":null' in line]
    assert len(texts) == 5 and len(model.produced_at) == 5
    assert all(arrived < produced for arrived, produced in zip(texts, model.produced_at[1:], strict=False))
