"""The AI tutor on the deployed stack: API Gateway (LocalStack) -> the tutor function (common + AI
layers) with the real stores and the LiveKit stand-in; the classroom page's join token as the only
credential of the page routes; and room.finished -> EventBridge -> the ClassSummary state machine,
executed by LocalStack's Step Functions, -> the summary served by the API."""

from __future__ import annotations

import json
import re
import time
import uuid

import httpx
import pytest

pytestmark = pytest.mark.e2e

KEY = "VF-ORG-ID"
NOTES = """# Newton's second law
The net force acting on a body equals its mass multiplied by its acceleration, written F = m a.

# Inertia
Inertia is the tendency of a body to keep its state of rest or of uniform motion unless a force acts.
"""


def _events(body: str) -> list:
    blocks = body.split("\n\n")
    assert blocks[-1] == "" and all(b.startswith("data: ") for b in blocks[:-1])
    return [b[6:] if b[6:] == "[DONE]" else json.loads(b[6:]) for b in blocks[:-1]]


def _open_class(
    http: httpx.Client, api_url: str, headers: dict, room_id: str, title: str, **settings
) -> None:
    """The org's server starts a class taught by t-1 (room `settings` as API.md names them)."""
    teacher = {"uid": "t-1", "name": "Tess", "role": "TEACHER"}
    body = {"roomId": room_id, "title": title, "participant": teacher} | (
        {"settings": settings} if settings else {}
    )
    created = http.post(f"{api_url}/v1/room/create", headers=headers, json=body)
    assert created.status_code == 200, created.text


def _add_material(
    http: httpx.Client, api_url: str, headers: dict, room_id: str, title: str, content: str
) -> None:
    """The teacher's notes for the room (small: used at once)."""
    material = http.post(
        f"{api_url}/v1/ai-tutor/rooms/{room_id}/material",
        headers=headers,
        json={"title": title, "kind": "notes", "contentType": "text/markdown", "content": content},
    )
    assert material.status_code == 201, material.text


def test_a_class_with_the_tutor_from_question_to_summary(
    http: httpx.Client, api_url: str, demo_key: str, demo_org_id: str, livekit_admin
) -> None:
    headers = {KEY: demo_key}
    room_id = f"e2e-tutor-{uuid.uuid4().hex[:8]}"
    _open_class(http, api_url, headers, room_id, "E2E Physics")
    joined = http.post(
        f"{api_url}/v1/room/{room_id}/join",
        headers=headers,
        json={"participant": {"uid": "s-1", "name": "Sam", "role": "STUDENT"}},
    )
    student_token = joined.json()["data"]["token"]
    # the student connects to the stand-in, which then sends LiveKit's signed webhooks to the API
    path = f"/admin/rooms/{demo_org_id}.{room_id}/participants"
    livekit_admin("POST", path, {"token": student_token}, token=student_token)
    _add_material(http, api_url, headers, room_id, "Notes", NOTES)

    ask = {
        "roomId": room_id,
        "studentUid": "s-1",
        "organizationId": demo_org_id,
        "text": "What does Newton's second law say?",
    }
    deadline, reply = time.monotonic() + 30, None
    while time.monotonic() < deadline:  # bounded polling: participant_joined travels stand-in -> API -> rooms
        reply = http.post(f"{api_url}/v1/ai-tutor/chat/stream", headers=headers, json=ask)
        if reply.status_code != 403:
            break
        time.sleep(0.3)
    assert reply is not None and reply.status_code == 200, reply.text if reply else None
    assert reply.headers["content-type"].startswith("text/event-stream")
    events = _events(reply.text)
    assert events[-1] == "[DONE]" and "usage" in events[-2]
    assert "mass multiplied by its acceleration" in "".join(e["text"] for e in events[:-2])

    # The classroom page's credential: the join token opens the page routes, the org key is not needed.
    page = http.post(
        f"{api_url}/v1/ai-tutor/classroom/chat/stream",
        headers={"Authorization": f"Bearer {student_token}"},
        json={"text": "What is inertia?"},
    )
    assert page.status_code == 200, page.text
    assert "tendency of a body" in "".join(e.get("text") or "" for e in _events(page.text)[:-1])
    assert http.get(f"{api_url}/v1/ai-tutor/classroom/state").status_code == 401
    assert http.get(f"{api_url}/v1/ai-tutor/usage/{room_id}").status_code == 401
    usage = http.get(f"{api_url}/v1/ai-tutor/usage/{room_id}", headers=headers).json()["data"]
    assert usage["interactions"] == 2 and usage["students"] == 1 and usage["cost"] > 0

    pending = http.get(f"{api_url}/v1/ai-tutor/summary/{room_id}", headers=headers)
    assert pending.status_code == 202 and pending.json()["data"]["state"] == "class_in_progress"
    assert http.delete(f"{api_url}/v1/room/{room_id}", headers=headers).status_code == 200
    deadline, summary = time.monotonic() + 120, None
    while time.monotonic() < deadline:  # bounded polling: EventBridge -> Step Functions -> the steps
        summary = http.get(f"{api_url}/v1/ai-tutor/summary/{room_id}", headers=headers)
        if summary.status_code != 202:
            break
        time.sleep(1)
    assert summary is not None and summary.status_code == 200, summary.text if summary else None
    data = summary.json()["data"]
    assert data["state"] == "ready" and data["method"] == "extractive"
    assert {q["frequency"] for q in data["topQueries"]} == {1} and len(data["topQueries"]) == 2


def test_hints_lead_to_the_answer_one_level_per_repeated_question(
    http: httpx.Client, api_url: str, demo_key: str, demo_org_id: str
) -> None:
    headers = {KEY: demo_key}
    room_id = f"e2e-hints-{uuid.uuid4().hex[:8]}"
    _open_class(http, api_url, headers, room_id, "E2E Algebra")
    student = {"uid": "s-1", "name": "Sam", "role": "STUDENT"}
    joined = http.post(f"{api_url}/v1/room/{room_id}/join", headers=headers, json={"participant": student})
    assert joined.status_code == 200, joined.text  # holding the join token admits the student
    algebra = (
        "# Solving 2x + 3 = 13\n"
        "First subtract 3 from both sides to get 2x = 10. Then divide both sides by 2. So x = 5.\n"
    )
    _add_material(http, api_url, headers, room_id, "Algebra", algebra)
    hints = http.put(
        f"{api_url}/v1/ai-tutor/rooms/{room_id}/settings", headers=headers, json={"mode": "hints"}
    )
    assert hints.status_code == 200, hints.text
    ask = {
        "roomId": room_id,
        "studentUid": "s-1",
        "organizationId": demo_org_id,
        "text": "What is x in 2x + 3 = 13?",
    }
    said = []
    for _ in range(4):
        reply = http.post(f"{api_url}/v1/ai-tutor/chat", headers=headers, json=ask)
        assert reply.status_code == 200, reply.text
        said.append(reply.json()["text"])
    assert [t.split(":")[0] for t in said] == [f"Hint {n} of 4" for n in (1, 2, 3, 4)]
    assert not any(re.search(r"\b5\b", t) for t in said[:3]) and "x = 5" in said[3]


def test_tutor_routes_refuse_without_credentials_and_bad_input_first(
    http: httpx.Client, api_url: str, demo_key: str
) -> None:
    assert (
        http.post(
            f"{api_url}/v1/ai-tutor/chat/stream", json={"roomId": "x", "studentUid": "s", "text": "hi"}
        ).status_code
        == 401
    )
    empty = http.post(
        f"{api_url}/v1/ai-tutor/chat",
        headers={KEY: demo_key},
        json={"roomId": "x", "studentUid": "s", "text": ""},
    )
    assert empty.status_code == 400 and empty.json()["error"] == "VALIDATION_ERROR"
    unknown = http.post(
        f"{api_url}/v1/ai-tutor/chat",
        headers={KEY: demo_key},
        json={"roomId": "no-such-room", "studentUid": "s", "text": "hi"},
    )
    assert unknown.status_code == 404
    assert (
        http.post(f"{api_url}/api/ai-tutor/summarize", json={"orgId": "x", "roomId": "y"}).status_code == 403
    )
    preflight = http.options(
        f"{api_url}/v1/ai-tutor/classroom/chat/stream",
        headers={"Origin": "http://127.0.0.1", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status_code == 200


def test_a_student_holding_our_join_token_is_admitted_unconnected_until_removed(
    http: httpx.Client, api_url: str, demo_key: str, demo_org_id: str, livekit_admin
) -> None:
    """A backend that follows the docs (create, join, ask) is answered before any browser connects:
    no LiveKit webhook is involved, so nothing is polled for. Removing the student shuts them out."""
    headers = {KEY: demo_key}
    room_id = f"e2e-admit-{uuid.uuid4().hex[:8]}"
    # Empty until the student connects: kept open however slow the machine is.
    _open_class(http, api_url, headers, room_id, "E2E Mechanics", emptyTimeout=1800)
    _add_material(http, api_url, headers, room_id, "Notes", NOTES)

    def join(uid: str, role: str) -> str:
        joined = http.post(
            f"{api_url}/v1/room/{room_id}/join",
            headers=headers,
            json={"participant": {"uid": uid, "name": uid, "role": role}},
        )
        assert joined.status_code == 200, joined.text
        return joined.json()["data"]["token"]

    def ask(uid: str) -> list[httpx.Response]:
        body = {
            "roomId": room_id,
            "studentUid": uid,
            "organizationId": demo_org_id,
            "text": "What does Newton's second law say?",
        }
        return [
            http.post(f"{api_url}/v1/ai-tutor/{route}", headers=headers, json=body)
            for route in ("chat", "chat/stream")
        ]

    student_token = join("s-2", "STUDENT")  # the backend holds the token; no browser has connected
    whole, streamed = ask("s-2")
    assert whole.status_code == 200, whole.text
    assert "mass multiplied by its acceleration" in whole.json()["text"]
    assert streamed.status_code == 200, streamed.text
    assert "mass multiplied by its acceleration" in "".join(e["text"] for e in _events(streamed.text)[:-2])
    join("t-2", "TEACHER")
    for uid in ("t-2", "s-404"):  # a teacher's token is not a student's; no token, no connection
        assert [r.status_code for r in ask(uid)] == [403, 403], uid

    # Removing names a connected participant: the student's page connects, the org's server removes them.
    livekit_admin(
        "POST",
        f"/admin/rooms/{demo_org_id}.{room_id}/participants",
        {"token": student_token},
        token=student_token,
    )
    removed = http.delete(f"{api_url}/v1/room/{room_id}/participants/s-2", headers=headers)
    assert removed.status_code == 200, removed.text
    for refused in ask("s-2"):  # at once, before LiveKit's webhook closes the session
        assert refused.status_code == 403 and "removed" in refused.json()["message"], refused.text
    join("s-2", "STUDENT")  # the org's server lets them back in
    assert [r.status_code for r in ask("s-2")] == [200, 200]

    assert http.delete(f"{api_url}/v1/room/{room_id}", headers=headers).status_code == 200
    for finished in ask("s-2"):
        assert finished.status_code == 403 and "ended" in finished.json()["message"], finished.text
