"""What one classroom credential can spend: each participant has a rate budget of its own (keyed by the
verified join token's org, room and identity) under the org's, and the room and per-student caps of
`/v1/billing/limits` refuse tutor questions with 402."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from ai_tutor.handler import handler
from support import api_event, call
from tutor_support import add_notes, join, open_class, question, tutor_event
from verriflo import orgs, ratelimit

pytest_plugins = ("livekit_support", "tutor_support")


@pytest.fixture
def clocks(monkeypatch: pytest.MonkeyPatch):
    """Frozen clocks: the rate limiter's windows and the ledger's month do not move under the test."""
    from verriflo import ledger

    frozen = {"t": 1_000_000_040.0}  # 20 s into a minute window
    monkeypatch.setattr(ratelimit, "now", lambda: frozen["t"])
    at = datetime.now(UTC)
    monkeypatch.setattr(ledger, "now", lambda: at)
    return frozen


@pytest.fixture
def room(org, livekit, lambda_context, clocks):
    room = open_class(org, livekit, lambda_context, students=("s-1", "s-2"))
    add_notes(room, lambda_context)
    return room


def page(name, token, ctx, body=None):
    headers = {"Authorization": f"Bearer {token}", "Origin": "http://127.0.0.1:4566"}
    return call(handler, api_event(f"ai_tutor/{name}.json", headers=headers, body=body), ctx)


def ask(token, ctx, text="What is inertia?"):
    return page("classroom_chat", token, ctx, {"text": text})


def test_one_participant_spending_its_budget_does_not_stop_another_of_the_same_room(
    room, org, lambda_context, clocks
):
    orgs.set_rate_limit(org.id, "ai-tutor-participant", orgs.RateLimit(limit=2, window=60))
    other = join(org, lambda_context, room.room_id, "s-2", "STUDENT")
    assert ask(room.student_token, lambda_context).status == 200
    assert page("classroom_state", room.student_token, lambda_context).status == 200
    refused = ask(room.student_token, lambda_context, "What is force?")
    assert refused.status == 429 and refused.body["error"] == "RATE_LIMITED" and not refused.body["success"]
    assert int(refused.headers["retry-after"]) == 40  # the rest of the frozen minute
    assert refused.headers["access-control-allow-origin"] == "*"

    answered = ask(other, lambda_context, "What unit is force measured in?")
    assert answered.status == 200, answered.body
    assert answered.headers["ratelimit-policy"] == '"ai-tutor-participant";q=2;w=60, "ai-tutor";q=600;w=60'

    clocks["t"] += 40  # the next window: the first student may ask again
    assert ask(room.student_token, lambda_context, "What is force?").status == 200


def test_a_single_participant_can_use_at_most_half_of_the_orgs_tutor_budget(
    room, org, lambda_context, clocks
):
    orgs.set_rate_limit(org.id, "ai-tutor", orgs.RateLimit(limit=6, window=60))
    other = join(org, lambda_context, room.room_id, "s-2", "STUDENT")
    first = [page("classroom_state", room.student_token, lambda_context).status for _ in range(5)]
    assert first == [200, 200, 200, 429, 429]
    refused = page("classroom_state", room.student_token, lambda_context)
    assert refused.headers["ratelimit-policy"] == '"ai-tutor-participant";q=3;w=60'
    # The refused requests never reached the org's count: of its 6, the notes upload took one and
    # the first student three, so two are left for everyone else.
    second = [page("classroom_state", other, lambda_context).status for _ in range(3)]
    assert second == [200, 200, 429]
    teacher = page("classroom_state", room.teacher_token, lambda_context)
    assert teacher.status == 429 and teacher.headers["ratelimit-policy"] == '"ai-tutor";q=6;w=60'


def _limits(org, ctx, **caps):
    from billing.handler import handler as billing

    reply = call(billing, api_event("billing/limits_put.json", headers=org.headers, body=caps), ctx)
    assert reply.status == 200, reply.body


def test_the_room_cap_refuses_tutor_questions_with_402(room, org, lambda_context):
    other = join(org, lambda_context, room.room_id, "s-2", "STUDENT")  # joining checks the caps too
    _limits(org, lambda_context, roomCredits=1)
    assert ask(room.student_token, lambda_context).status == 200
    _assert_charged(org.id, "s-1")

    refused = ask(other, lambda_context, "What unit is force measured in?")
    assert refused.status == 402 and refused.body["error"] == "INSUFFICIENT_CREDITS"
    assert "this room's cap of 1 credits" in refused.body["message"]
    # The org key's route is refused the same way.
    body = question(room, "What is force?", uid="s-2")
    assert call(handler, tutor_event("chat", org.headers, body), lambda_context).status == 402


def test_the_per_student_cap_refuses_that_student_only(room, org, lambda_context):
    other = join(org, lambda_context, room.room_id, "s-2", "STUDENT")  # joining checks the caps too
    _limits(org, lambda_context, studentMonthlyCredits=1)
    assert ask(room.student_token, lambda_context).status == 200
    _assert_charged(org.id, "s-1")

    refused = ask(room.student_token, lambda_context, "What is force?")
    assert refused.status == 402 and "this student's monthly cap of 1 credits" in refused.body["message"]
    whole = call(handler, tutor_event("chat", org.headers, question(room, "What is force?")), lambda_context)
    assert whole.status == 402
    assert ask(other, lambda_context, "What unit is force measured in?").status == 200


def _assert_charged(org_id: str, student: str) -> None:
    from verriflo import db

    (debit,) = db.collection("ledger").find({"orgId": org_id, "service": "ai_tutor"})
    assert debit["studentId"] == student and debit["roomId"] == "physics-101" and debit["amountMilli"] > 0
