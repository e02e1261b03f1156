"""Usage: each answer is metered into the ledger, and the usage summary adds up the AI API and the
AI tutor (its `tutor_interactions` collection) for the org and period asked, and nobody else's."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from ai_agent import answering, handler
from ai_support import ScriptedProvider, grant, usage_period
from support import api_event, call
from verriflo import db, ledger


@pytest.fixture
def model(monkeypatch: pytest.MonkeyPatch) -> ScriptedProvider:
    scripted = ScriptedProvider(pieces=["An ", "answer."])
    monkeypatch.setattr(answering, "provider", lambda: scripted)
    return scripted


def summary(org, ctx, query=None):
    return call(
        handler.handler,
        api_event("ai_agent/usage_summary.json", headers=org.headers, query=query or usage_period()),
        ctx,
    )


def test_answers_are_metered_and_summarised_with_the_tutor(org, other_org, lambda_context, model):
    grant(org.id, 100)
    before = ledger.balance_milli(org.id)
    for chat_id, message in (("a", "one"), ("a", "two"), ("b", "three"), (None, "four")):
        body = {"message": message} | ({"chatId": chat_id} if chat_id else {})
        assert (
            call(
                handler.handler,
                api_event("ai_agent/chat.json", headers=org.headers, body=body),
                lambda_context,
            ).status
            == 200
        )
    # 4 requests x (11 in + 2 out) tokens at 0.5 credits per 1k tokens: 6.5 milli-credits each,
    # rounded half up per request by the ledger.
    assert before - ledger.balance_milli(org.id) == 4 * 7
    today = datetime.now(UTC)
    db.collection("tutor_interactions").insert_many(
        [
            {
                "orgId": org.id,
                "roomId": "r1",
                "studentUid": "s1",
                "inputTokens": 100,
                "outputTokens": 300,
                "createdAt": today,
                "status": "completed",
            },
            {
                "orgId": org.id,
                "roomId": "r1",
                "studentUid": "s2",
                "inputTokens": 50,
                "outputTokens": 50,
                "createdAt": today,
                "status": "failed",
            },
            {
                "orgId": other_org.id,
                "roomId": "r9",
                "studentUid": "s9",
                "inputTokens": 999,
                "outputTokens": 999,
                "createdAt": today,
                "status": "completed",
            },
        ]
    )
    day = today.date().isoformat()
    reply = summary(org, lambda_context, {"startDate": day, "endDate": day})
    assert reply.status == 200, reply.body
    data = reply.data
    assert data["breakdown"]["aiAgent"] == {
        "sessions": 3,
        "requests": 4,
        "failedRequests": 0,
        "inputTokens": 44,
        "outputTokens": 8,
        "cost": 0.028,
    }
    assert data["breakdown"]["aiTutor"] == {
        "interactions": 2,
        "students": 2,
        "rooms": 1,
        "failedInteractions": 1,
        "inputTokens": 150,
        "outputTokens": 350,
        "cost": 0.25,
    }
    assert data["summary"] == {
        "totalSessions": 5,
        "totalTokenCost": 0.278,
        "totalInputTokens": 194,
        "totalOutputTokens": 358,
    }
    # Another period, and another org, see none of it.
    empty = summary(org, lambda_context, {"startDate": "2020-01-01", "endDate": "2020-01-31"}).data
    assert empty["summary"]["totalSessions"] == 0 and empty["breakdown"]["aiAgent"]["requests"] == 0
    theirs = summary(other_org, lambda_context, {"startDate": day, "endDate": day}).data
    assert theirs["breakdown"]["aiAgent"]["requests"] == 0
    assert theirs["breakdown"]["aiTutor"]["interactions"] == 1


def test_failed_answers_are_counted_but_not_charged(org, lambda_context, monkeypatch):
    grant(org.id, 100)
    before = ledger.balance_milli(org.id)
    failing = ScriptedProvider(pieces=["x", "y"], fail_after=1)
    monkeypatch.setattr(answering, "provider", lambda: failing)
    call(
        handler.handler,
        api_event("ai_agent/chat_stream.json", headers=org.headers, body={"message": "hi"}),
        lambda_context,
    )
    assert ledger.balance_milli(org.id) == before
    agent = summary(org, lambda_context).data["breakdown"]["aiAgent"]
    assert agent["requests"] == 1 and agent["failedRequests"] == 1 and agent["cost"] == 0


@pytest.mark.parametrize(
    "query",
    [
        {"startDate": "yesterday"},
        {"startDate": "2026-02-01", "endDate": "2026-01-01"},
        {"startDate": "2020-01-01", "endDate": "2026-01-01"},
    ],
)
def test_bad_periods_are_400(org, lambda_context, query):
    reply = summary(org, lambda_context, query)
    assert reply.status == 400 and reply.body["error"] == "VALIDATION_ERROR"
