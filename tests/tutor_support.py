"""Helpers for the AI tutor tests: a live class (room created through the rooms function, teacher and
student connected through the LiveKit stand-in, webhooks delivered), tutor events, SSE parsing."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from livekit_support import LiveKit, fund, rooms_event
from support import ROOT, LambdaContext, api_event, call

ROOM_ID = "physics-101"
TITLE = "Physics 101"
NOTES = """# Newton's second law

The net force acting on a body equals its mass multiplied by its acceleration, written F = m a.
A larger force gives a larger acceleration; a heavier body accelerates less under the same force.

# Inertia

Inertia is the tendency of a body to keep its state of rest or of uniform motion in a straight line
unless a net external force acts on it. This is Newton's first law.

# Units

Force is measured in newtons. One newton accelerates one kilogram at one metre per second squared.
"""


@dataclass
class Classroom:
    """A live class: its org, the room, and the join tokens of its teacher and student."""

    org: Any
    room_id: str
    teacher_token: str
    student_token: str
    livekit: LiveKit

    @property
    def headers(self) -> dict[str, str]:
        return self.org.headers


def tutor_event(
    name: str, headers: dict[str, str], body: Any = None, query: dict[str, str] | None = None, **params: str
) -> dict[str, Any]:
    """A tutor sample event with its path parameters (and so its path) replaced."""
    from support import load_event

    path = load_event(f"ai_tutor/{name}.json")["resource"]
    for key, value in params.items():
        path = path.replace("{" + key + "}", value)
    return api_event(
        f"ai_tutor/{name}.json",
        headers=headers,
        body=body,
        path=path,
        path_params=params or None,
        query=query,
    )


def join(org: Any, ctx: Any, room_id: str, uid: str, role: str) -> str:
    """A join token from the rooms function (as the org's server gets one for a participant)."""
    from rooms.handler import handler as rooms

    body = {"participant": {"uid": uid, "name": uid.title(), "role": role}}
    return call(rooms, rooms_event("join", org.headers, body, room_id=room_id), ctx).data["token"]


def open_class(
    org: Any,
    livekit: LiveKit,
    ctx: Any,
    room_id: str = ROOM_ID,
    title: str = TITLE,
    students: tuple[str, ...] = ("s-1",),
    course_id: str | None = None,
) -> Classroom:
    """Create the room (of a course when `course_id` is given), connect its teacher and students,
    deliver LiveKit's webhooks to rooms."""
    from rooms.handler import handler as rooms

    fund(org.id, 2000)
    body = {
        "roomId": room_id,
        "title": title,
        "participant": {"uid": "t-1", "name": "Ada", "role": "TEACHER"},
    } | ({"courseId": course_id} if course_id else {})
    created = call(rooms, api_event("rooms/create.json", headers=org.headers, body=body), ctx)
    assert created.status == 200, created.body
    name = f"{org.id}.{room_id}"
    livekit.join(name, created.data["token"])
    tokens = []
    for uid in students:
        token = join(org, ctx, room_id, uid, "STUDENT")
        livekit.join(name, token)
        tokens.append(token)
    livekit.pump(rooms, ctx, "room_started", *(["participant_joined"] * (1 + len(students))))
    return Classroom(
        org=org,
        room_id=room_id,
        teacher_token=created.data["token"],
        student_token=tokens[0],
        livekit=livekit,
    )


def end_class(room: Classroom, ctx: Any) -> None:
    """The org's server ends the class (publishes room.finished)."""
    from rooms.handler import handler as rooms

    reply = call(rooms, rooms_event("destroy", room.headers, room_id=room.room_id), ctx)
    assert reply.status == 200, reply.body


def add_notes(
    room: Classroom, ctx: Any, content: str = NOTES, title: str = "Lecture notes"
) -> dict[str, Any]:
    """The teacher's notes for the room, through the tutor's material route."""
    from ai_tutor.handler import handler

    body = {"title": title, "kind": "notes", "contentType": "text/markdown", "content": content}
    reply = call(handler, tutor_event("material_add", room.headers, body, room_id=room.room_id), ctx)
    assert reply.status == 201, reply.body
    return reply.data


def question(
    room: Classroom, text: str | None = "What does Newton's second law say?", uid: str = "s-1", **extra: Any
) -> dict[str, Any]:
    """A chat request body of API.md."""
    body: dict[str, Any] = {"roomId": room.room_id, "studentUid": uid, "organizationId": room.org.id}
    if text is not None:
        body["text"] = text
    return body | extra


def sse_events(body: str) -> list[Any]:
    """An SSE body as its `data:` payloads (the last one is the string "[DONE]"); checks the framing."""
    assert body.endswith("\n\n"), "every SSE event ends with a blank line"
    events: list[Any] = []
    for block in body.split("\n\n")[:-1]:
        assert block.startswith("data: ") and "\n" not in block, block
        payload = block[len("data: ") :]
        events.append(payload if payload == "[DONE]" else json.loads(payload))
    assert events and events[-1] == "[DONE]" and events.count("[DONE]") == 1
    return events


def ask_stream(room: Classroom, ctx: Any, body: dict[str, Any], headers: dict[str, str] | None = None):
    """POST /v1/ai-tutor/chat/stream in-process; (reply, events or None for an error envelope)."""
    from ai_tutor.handler import handler

    reply = call(handler, tutor_event("chat_stream", headers or room.headers, body), ctx)
    if reply.status != 200:
        return reply, None
    return reply, sse_events(reply.body)


def interactions(org_id: str) -> list[dict[str, Any]]:
    """Every stored exchange of the org."""
    from verriflo import db

    return list(db.collection("tutor_interactions").find({"orgId": org_id}))


@pytest.fixture
def classroom(org, livekit: LiveKit, lambda_context) -> Classroom:
    """A live class of `org` with a connected teacher (t-1) and student (s-1)."""
    return open_class(org, livekit, lambda_context)


# --- the ClassSummary state machine, run state by state -------------------------------------------

DEFINITION = ROOT / "functions" / "ai_tutor" / "statemachine" / "class_summary.asl.json"


class StepFailed(Exception):
    """A Lambda step raised: Step Functions names the error after the exception class."""

    def __init__(self, name: str, cause: str) -> None:
        super().__init__(name)
        self.name, self.cause = name, cause


def _path(data: Any, path: str, execution: str) -> Any:
    if path.startswith("$$.Execution.Name"):
        return execution
    value = data
    for part in path[2:].split(".") if path != "$" else []:
        value = value[part]
    return value


def _parameters(template: dict[str, Any], data: Any, execution: str) -> dict[str, Any]:
    return {
        k[:-2] if k.endswith(".$") else k: _path(data, v, execution) if k.endswith(".$") else v
        for k, v in template.items()
    }


def _matches(errors: list[str], name: str) -> bool:
    return "States.ALL" in errors or name in errors


def run_definition(
    event: dict[str, Any],
    execution: str,
    attempts: list[str] | None = None,
    timeouts: tuple[type[BaseException], ...] = (),
) -> tuple[str, Any]:
    """Execute the ASL document with `steps.handler` as every Task's Lambda; (final status, output).
    An exception of `timeouts` is a Lambda killed mid-way: Step Functions sees `States.Timeout`."""
    from ai_tutor import steps

    definition = json.loads(Path(DEFINITION).read_text())
    state_name, data = definition["StartAt"], event
    while True:
        state = definition["States"][state_name]
        kind = state["Type"]
        if kind == "Succeed":
            return "SUCCEEDED", data
        if kind == "Fail":
            return "FAILED", {"error": state["Error"], "cause": state["Cause"]}
        if kind == "Pass":
            data = _parameters(state["Parameters"], data, execution)
        elif kind == "Choice":
            chosen = next(
                (
                    c["Next"]
                    for c in state["Choices"]
                    if _path(data, c["Variable"], execution) == c["BooleanEquals"]
                ),
                state["Default"],
            )
            state_name = chosen
            continue
        elif kind == "Task":
            assert state["Resource"] == "${TutorSummaryFunctionArn}"
            payload = _parameters(state["Parameters"], data, execution)
            tries, caught, result = 0, None, None
            while True:
                tries += 1
                if attempts is not None:
                    attempts.append(payload["step"])
                try:
                    result = steps.handler(payload, LambdaContext())
                    break
                except timeouts:
                    failure = StepFailed("States.Timeout", "The task timed out.")
                except Exception as exc:  # noqa: BLE001 - the interpreter maps any error like Step Functions
                    failure = StepFailed(type(exc).__name__, str(exc))
                retry = next(
                    (r for r in state.get("Retry", []) if _matches(r["ErrorEquals"], failure.name)), None
                )
                if retry is not None and tries <= retry["MaxAttempts"]:
                    continue  # the interval is Step Functions' business; the count is what matters here
                caught = next(
                    (c for c in state.get("Catch", []) if _matches(c["ErrorEquals"], failure.name)), None
                )
                if caught is None:
                    return "FAILED", {"error": failure.name, "cause": failure.cause}
                break
            if caught is not None:
                data = data | {caught["ResultPath"][2:]: {"Error": failure.name, "Cause": failure.cause}}
                state_name = caught["Next"]
                continue
            data = result
        state_name = state["Next"]
