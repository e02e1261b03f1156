"""Class summaries: the ClassSummary definition executed state by state with its Lambda steps run
in-process (Retry, Catch and Choice followed as Step Functions does), from the real `room.finished`
event the rooms function publishes; similar questions grouped; idempotent; failures recorded."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from ai_support import ScriptedProvider
from ai_tutor import steps, summary
from ai_tutor.handler import handler
from livekit_support import EventTap
from support import call
from tutor_support import (
    DEFINITION,
    ROOM_ID,
    Classroom,
    add_notes,
    ask_stream,
    end_class,
    question,
    run_definition,
    tutor_event,
)

pytest_plugins = ("livekit_support", "tutor_support")


def finished_event(tap: EventTap) -> dict[str, Any]:
    """The room.finished event the rooms function published, as EventBridge hands it to the rule target."""
    (detail,) = [e for e in tap.drain() if e["type"] == "room.finished"]
    return {
        "version": "0",
        "id": "e-" + detail["id"],
        "detail-type": "room.finished",
        "source": "verriflo",
        "detail": detail,
    }


def get_summary(room: Classroom, ctx, headers=None):
    return call(handler, tutor_event("summary", headers or room.headers, room_id=room.room_id), ctx)


QUESTIONS = [
    ("s-1", "What does Newton's second law say?"),
    ("s-2", "Can you explain Newton's second law?"),
    ("s-3", "What is Newton's second law of motion?"),
    ("s-1", "What is inertia?"),
    ("s-2", "What does inertia mean?"),
    ("s-3", "What unit is force measured in?"),
]


@pytest.fixture
def taught(org, livekit, lambda_context) -> Classroom:
    from tutor_support import open_class

    room = open_class(org, livekit, lambda_context, students=("s-1", "s-2", "s-3"))
    add_notes(room, lambda_context)
    for uid, text in QUESTIONS:
        ask_stream(room, lambda_context, question(room, text, uid=uid))
    return room


def test_definition_is_valid_and_every_task_retries_and_catches():
    definition = json.loads(Path(DEFINITION).read_text())
    states = definition["States"]
    assert definition["StartAt"] in states
    for name, state in states.items():
        for target in [
            state.get("Next"),
            state.get("Default"),
            *[c["Next"] for c in state.get("Choices", [])],
            *[c["Next"] for c in state.get("Catch", [])],
        ]:
            assert target is None or target in states, (name, target)
        if state["Type"] == "Task" and name != "RecordFailure":
            assert state["Retry"] and state["Catch"][0]["Next"] == "RecordFailure", name
            assert "ServiceUnavailable" in state["Retry"][0]["ErrorEquals"]
    assert states["ReadEvent"]["Parameters"]["orgId.$"] == "$.detail.orgId"  # the whole event, not InputPath
    assert states["Failed"]["Type"] == "Fail" and states["Done"]["Type"] == "Succeed"


def test_summary_before_it_exists_is_202_with_a_clear_state_never_an_empty_200(
    taught: Classroom, lambda_context, other_org
):
    live = get_summary(taught, lambda_context)
    assert live.status == 202 and live.data["state"] == "class_in_progress" and live.data["summary"] is None
    end_class(taught, lambda_context)
    pending = get_summary(taught, lambda_context)
    assert (
        pending.status == 202
        and pending.data["state"] == "pending"
        and "try again" in pending.data["message"]
    )
    assert get_summary(taught, lambda_context, other_org.headers).status == 404


def test_room_finished_runs_the_class_summary_and_publishes_summary_ready(
    taught: Classroom, lambda_context, event_tap: EventTap
):
    end_class(taught, lambda_context)
    status, output = run_definition(finished_event(event_tap), "exec-1")
    assert status == "SUCCEEDED", output
    reply = get_summary(taught, lambda_context)
    assert reply.status == 200 and reply.data["state"] == "ready", reply.body
    data = reply.data
    assert data["method"] == "extractive" and data["summary"].startswith(summary.EXTRACTIVE_NOTE)
    assert "6 questions from 3 students" in data["summary"] and "Physics 101" in data["summary"]
    taken = data["summary"].split("From the class material on those questions: ", 1)[1]
    # Sentences quoted from the material, the one closest to each most-asked group.
    assert "accelerat" in taken and "Inertia is the tendency" in taken and "One newton accelerates" in taken
    top = data["topQueries"]
    assert [q["frequency"] for q in top] == [3, 2, 1]
    assert "second law" in top[0]["question"] and "mass multiplied by its acceleration" in top[0]["answer"]
    assert "inertia" in top[1]["question"].lower() and "force" in top[2]["question"]
    ready = [e for e in event_tap.drain() if e["type"] == "summary.ready"]
    assert len(ready) == 1 and ready[0]["data"]["roomId"] == ROOM_ID and ready[0]["data"]["topQueries"] == 3


def test_running_twice_for_one_room_keeps_one_summary_and_one_event(
    taught: Classroom, lambda_context, event_tap: EventTap
):
    from verriflo import db

    end_class(taught, lambda_context)
    event = finished_event(event_tap)
    assert run_definition(event, "exec-1")[0] == "SUCCEEDED"
    first = get_summary(taught, lambda_context).data
    steps: list[str] = []
    assert run_definition(event, "exec-2", steps)[0] == "SUCCEEDED"
    assert steps == ["gather"]  # the second run stops at once
    assert db.collection("tutor_summaries").count_documents({}) == 1
    assert get_summary(taught, lambda_context).data == first
    assert [e["type"] for e in event_tap.drain()].count("summary.ready") == 1


def test_a_failing_step_is_retried_then_recorded_and_the_summary_says_so(
    taught: Classroom, lambda_context, event_tap: EventTap, monkeypatch
):
    from verriflo.errors import ServiceUnavailable

    end_class(taught, lambda_context)
    event = finished_event(event_tap)

    def broken(*_args, **_kwargs):
        raise ServiceUnavailable("The database is unavailable; retry shortly.")

    monkeypatch.setattr(summary, "write", broken)
    steps: list[str] = []
    status, output = run_definition(event, "exec-1", steps)
    assert status == "FAILED" and output["error"] == "ClassSummaryFailed"
    assert steps == ["gather"] + ["summarize"] * 4 + ["fail"]  # 1 try + 3 retries, then the recorded failure
    failed = get_summary(taught, lambda_context)
    assert failed.status == 502 and "could not be produced" in failed.body["message"]
    from verriflo import db

    record = db.collection("tutor_summaries").find_one({})
    assert record["status"] == "failed" and record["error"] == "ServiceUnavailable"
    assert not [e for e in event_tap.drain() if e["type"] == "summary.ready"]
    monkeypatch.undo()
    # Fixed: the internal route (or a new execution) writes it.
    secret = _dispatch_secret()
    again = call(
        handler,
        tutor_event("summarize", {"X-Dispatch-Secret": secret}, {"orgId": taught.org.id, "roomId": ROOM_ID}),
        lambda_context,
    )
    assert again.status == 200 and again.data["state"] == "ready"


def _dispatch_secret() -> str:
    from verriflo.secrets import get_secret
    from verriflo.settings import secret_settings

    return get_secret(secret_settings().dispatch_secret_name)


def test_the_internal_route_needs_the_dispatch_secret_and_is_idempotent(
    taught: Classroom, lambda_context, event_tap
):
    end_class(taught, lambda_context)
    body = {"orgId": taught.org.id, "roomId": ROOM_ID}
    assert call(handler, tutor_event("summarize", {}, body), lambda_context).status == 403
    assert (
        call(handler, tutor_event("summarize", {"X-Dispatch-Secret": "wrong"}, body), lambda_context).status
        == 403
    )
    assert call(handler, tutor_event("summarize", taught.headers, body), lambda_context).status == 403
    secret = {"X-Dispatch-Secret": _dispatch_secret()}
    first = call(handler, tutor_event("summarize", secret, body), lambda_context)
    second = call(handler, tutor_event("summarize", secret, body), lambda_context)
    assert first.status == second.status == 200 and first.data == second.data
    assert [e["type"] for e in event_tap.drain()].count("summary.ready") == 1
    unknown = call(handler, tutor_event("summarize", secret, body | {"roomId": "nope"}), lambda_context)
    assert unknown.status == 404


def test_the_internal_route_never_summarizes_another_orgs_room(taught: Classroom, other_org, lambda_context):
    from verriflo import db

    end_class(taught, lambda_context)
    secret = {"X-Dispatch-Secret": _dispatch_secret()}
    reply = call(
        handler, tutor_event("summarize", secret, {"orgId": other_org.id, "roomId": ROOM_ID}), lambda_context
    )
    assert reply.status == 404 and "inertia" not in str(reply.body) and taught.org.id not in str(reply.body)
    assert db.collection("tutor_summaries").count_documents({}) == 0


def test_with_a_model_configured_the_summary_is_generated(taught: Classroom, lambda_context, monkeypatch):
    from verriflo_ai.settings import ai_settings

    model = ScriptedProvider(pieces=["Students asked most about ", "Newton's second law."])
    monkeypatch.setattr(summary, "provider", lambda: model)
    monkeypatch.setenv("AI_PROVIDER", "openai")
    ai_settings.cache_clear()
    try:
        end_class(taught, lambda_context)
        assert steps.run(taught.org.id, ROOM_ID, "run-1")["stored"] is True
    finally:
        ai_settings.cache_clear()
    data = get_summary(taught, lambda_context).data
    assert (
        data["method"] == "generated" and data["summary"] == "Students asked most about Newton's second law."
    )
    facts = model.calls[0].context_note
    assert "(3x) What does Newton's second law say?" in facts or "(3x)" in facts
    assert "Physics 101" in facts and "mass multiplied" in facts


def test_an_empty_class_gets_an_honest_summary(org, livekit, lambda_context):
    from tutor_support import open_class

    room = open_class(org, livekit, lambda_context)
    end_class(room, lambda_context)
    steps.run(org.id, ROOM_ID, "run-1")
    data = get_summary(room, lambda_context).data
    assert data["topQueries"] == [] and "no student asked the tutor anything" in data["summary"]
