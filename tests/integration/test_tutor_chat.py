"""The AI tutor's chat in-process against the real MongoDB-wire server, Redis, the LiveKit stand-in
and the real embedding model: answers grounded in the class, SSE framing of API.md, exchanges
stored and metered, and every bad input or fault answered before any model call."""

from __future__ import annotations

import base64
import re

import pytest
from ai_support import ScriptedProvider, spoken_wav
from ai_tutor import answering
from ai_tutor.handler import handler
from livekit_support import rooms_event
from support import call
from tutor_support import (
    ROOM_ID,
    Classroom,
    add_notes,
    ask_stream,
    end_class,
    interactions,
    join,
    open_class,
    question,
    tutor_event,
)

pytest_plugins = ("livekit_support", "tutor_support")


def ledger_entries(org_id):
    from verriflo import db

    return list(db.collection("ledger").find({"orgId": org_id, "service": "ai_tutor"}))


def test_streamed_answer_is_grounded_in_the_class_material_with_api_md_framing(
    classroom: Classroom, lambda_context
):
    add_notes(classroom, lambda_context)
    reply, events = ask_stream(classroom, lambda_context, question(classroom))
    assert reply.status == 200, reply.body
    assert reply.headers["content-type"].startswith("text/event-stream")
    assert reply.headers["cache-control"] == "no-cache" and reply.headers["connection"] == "keep-alive"
    texts, (final, done) = events[:-2], events[-2:]
    assert done == "[DONE]" and texts
    assert all(
        set(e) == {"text", "usage"} and e["usage"] is None and isinstance(e["text"], str) for e in texts
    )
    answer = "".join(e["text"] for e in texts)
    assert "mass multiplied by its acceleration" in answer and "Lecture notes" in answer
    assert final["usage"]["inputTokens"] > 0 and final["usage"]["outputTokens"] > 0
    assert final["grounded"] is True and final["sources"][0]["kind"] == "material"
    assert final["sources"][0]["title"].startswith("Lecture notes > Newton")
    (stored,) = interactions(classroom.org.id)
    assert stored["_id"] == final["interactionId"] and stored["status"] == "completed"
    assert stored["roomId"] == ROOM_ID and stored["studentUid"] == "s-1" and stored["answer"] == answer
    assert stored["inputTokens"] == final["usage"]["inputTokens"] and stored["createdAt"]
    (debit,) = ledger_entries(classroom.org.id)
    assert debit["roomId"] == ROOM_ID and debit["entryId"] == f"tutor:{stored['_id']}"
    assert debit["meta"]["outputTokens"] == final["usage"]["outputTokens"]


def test_whole_answer_carries_the_api_md_fields(classroom: Classroom, lambda_context):
    add_notes(classroom, lambda_context)
    reply = call(
        handler,
        tutor_event("chat", classroom.headers, question(classroom, "What is inertia?")),
        lambda_context,
    )
    assert reply.status == 200, reply.body
    body = reply.body
    assert (
        body["success"] is True and body["requestModality"] == "text" and body["responseModality"] == "text"
    )
    assert "tendency of a body to keep its state of rest" in body["text"] and body["audio"] is None
    assert set(body["usage"]) >= {"inputTokens", "outputTokens"}
    assert body["data"]["text"] == body["text"] and body["data"]["sources"][0]["title"].endswith("Inertia")


def test_a_question_the_class_does_not_cover_is_answered_plainly_as_such(
    classroom: Classroom, lambda_context
):
    add_notes(classroom, lambda_context)
    _, events = ask_stream(
        classroom, lambda_context, question(classroom, "Who won the football world cup in 1998?")
    )
    answer = "".join(e.get("text") or "" for e in events[:-1] if isinstance(e, dict))
    assert "could not find anything relevant" in answer
    assert events[-2]["grounded"] is False and events[-2]["sources"] == []


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"text": ""}, 400, "VALIDATION_ERROR"),
        ({"text": "   \n "}, 400, "VALIDATION_ERROR"),
        ({"text": "x" * 2001}, 413, "PAYLOAD_TOO_LARGE"),
        ({"text": None, "audio": "not base64 at all!"}, 400, "VALIDATION_ERROR"),
        (
            {"text": None, "audio": base64.b64encode(b"plain words, no audio").decode()},
            400,
            "VALIDATION_ERROR",
        ),
        ({"text": None, "audio": "A" * 7_100_000}, 413, "PAYLOAD_TOO_LARGE"),
        ({"responseModality": "video"}, 400, "VALIDATION_ERROR"),
        ({"roomId": "has space"}, 400, "VALIDATION_ERROR"),
        ({"surprise": 1}, 400, "VALIDATION_ERROR"),
    ],
)
def test_bad_input_is_refused_before_any_model_call_and_nothing_is_stored(
    classroom: Classroom, lambda_context, monkeypatch, change, status, code
):
    model = ScriptedProvider(pieces=["never"])
    monkeypatch.setattr(answering, "provider", lambda: model)
    body = {k: v for k, v in (question(classroom) | change).items() if v is not None}
    for name in ("chat", "chat_stream"):
        reply = call(handler, tutor_event(name, classroom.headers, body), lambda_context)
        assert reply.status == status and reply.body["error"] == code and reply.body["success"] is False, (
            reply.body
        )
        assert reply.body["message"]
    assert (
        model.calls == [] and interactions(classroom.org.id) == [] and ledger_entries(classroom.org.id) == []
    )


def test_only_a_connected_student_of_an_active_room_of_the_org_may_ask(
    org, other_org, livekit, lambda_context, monkeypatch
):
    model = ScriptedProvider(pieces=["never"])
    monkeypatch.setattr(answering, "provider", lambda: model)
    room = open_class(org, livekit, lambda_context)
    cases = [
        (question(room, uid="s-404"), org.headers, 403),  # not in the room
        (question(room, uid="t-1"), org.headers, 403),  # the teacher is not a student
        (question(room) | {"roomId": "no-such-room"}, org.headers, 404),
        (question(room) | {"organizationId": other_org.id}, org.headers, 403),
        (question(room) | {"organizationId": other_org.id}, other_org.headers, 404),  # another org's room
    ]
    for body, headers, status in cases:
        for name in ("chat", "chat_stream"):
            reply = call(handler, tutor_event(name, headers, body), lambda_context)
            assert reply.status == status, (body, reply.body)
            assert room.org.id not in str(reply.body) or status != 404
    assert call(handler, tutor_event("chat", {}, question(room)), lambda_context).status == 401
    end_class(room, lambda_context)
    finished = call(handler, tutor_event("chat_stream", org.headers, question(room)), lambda_context)
    assert finished.status == 403 and "ended" in finished.body["message"]
    assert model.calls == [] and interactions(org.id) == []


def test_a_student_holding_our_join_token_is_admitted_connected_or_not_until_removed(
    org, other_org, livekit, lambda_context
):
    from rooms.handler import handler as rooms
    from verriflo import db
    from verriflo.orgs import now

    room = open_class(org, livekit, lambda_context)  # t-1 and s-1 connected
    other_room = open_class(
        org, livekit, lambda_context, room_id="chem-1", title="Chemistry", students=("s-9",)
    )
    add_notes(room, lambda_context)
    join(org, lambda_context, room.room_id, "s-2", "STUDENT")  # the backend got a token; no browser yet
    join(org, lambda_context, room.room_id, "t-2", "TEACHER")

    def ask(uid: str, headers=None, **change):
        body = question(room, uid=uid) | change
        replies = [
            call(handler, tutor_event(name, headers or org.headers, body), lambda_context)
            for name in ("chat", "chat_stream")
        ]
        assert replies[0].status == replies[1].status, [r.body for r in replies]
        return replies[0]

    admitted = ask("s-2")
    assert admitted.status == 200 and "mass multiplied by its acceleration" in admitted.body["text"]
    assert ask("t-2").status == 403  # a teacher's token is not a student's
    assert ask("s-2", roomId=other_room.room_id).status == 403  # a token for another room
    assert (
        ask("s-2", headers=other_org.headers, organizationId=other_org.id).status == 404
    )  # another org's room
    assert ask("s-2", organizationId=other_org.id).status == 403
    grants = db.collection("room_grants")
    grants.update_one({"orgId": org.id, "roomId": room.room_id, "uid": "s-2"}, {"$set": {"expiresAt": now()}})
    assert ask("s-2").status == 403  # the token ran out (and they never connected)
    # Removed while only holding a token (no browser connected): refused from then on.
    join(org, lambda_context, room.room_id, "s-3", "STUDENT")
    assert ask("s-3").status == 200
    unconnected = call(
        rooms, rooms_event("participant_remove", org.headers, room_id=room.room_id, uid="s-3"), lambda_context
    )
    assert unconnected.status == 200 and unconnected.data["connected"] is False
    refused = ask("s-3")
    assert refused.status == 403 and "removed" in refused.body["message"]

    # Removed: refused at once (before LiveKit's webhook closes the session) and after it.
    removed = call(
        rooms, rooms_event("participant_remove", org.headers, room_id=room.room_id, uid="s-1"), lambda_context
    )
    assert removed.status == 200, removed.body
    refused = ask("s-1")
    assert refused.status == 403 and "removed" in refused.body["message"]
    livekit.pump(rooms, lambda_context, "participant_left")
    assert ask("s-1").status == 403
    join(org, lambda_context, room.room_id, "s-1", "STUDENT")  # the org's server lets them back in
    assert ask("s-1").status == 200
    end_class(room, lambda_context)
    finished = ask("s-1")
    assert finished.status == 403 and "ended" in finished.body["message"]


def test_a_student_removed_from_the_classroom_page_is_refused_until_given_a_new_token(
    classroom: Classroom, livekit, lambda_context, monkeypatch
):
    """The teacher's page removes the student with LiveKit directly (its own roomAdmin token); the
    rooms function learns it from LiveKit's participant_left."""
    from livekit_support import twirp
    from rooms.handler import handler as rooms

    monkeypatch.setattr(answering, "provider", lambda: ScriptedProvider(pieces=["F = m a."]))

    def ask():
        return call(handler, tutor_event("chat", classroom.headers, question(classroom)), lambda_context)

    assert ask().status == 200
    body = {"room": f"{classroom.org.id}.{ROOM_ID}", "identity": "s-1"}
    assert twirp(livekit.url, "RemoveParticipant", body, classroom.teacher_token)[0] == 200
    livekit.pump(rooms, lambda_context, "participant_left")
    refused = ask()
    assert refused.status == 403 and "removed" in refused.body["message"]
    join(classroom.org, lambda_context, ROOM_ID, "s-1", "STUDENT")  # the org's server lets them back in
    assert ask().status == 200


def test_the_teacher_can_switch_the_tutor_off(classroom: Classroom, lambda_context):
    put = call(
        handler,
        tutor_event("settings_put", classroom.headers, {"enabled": False}, room_id=ROOM_ID),
        lambda_context,
    )
    assert put.status == 200 and put.data["enabled"] is False
    reply = call(handler, tutor_event("chat_stream", classroom.headers, question(classroom)), lambda_context)
    assert reply.status == 403 and "switched the tutor off" in reply.body["message"]


def test_an_org_without_credits_gets_402_before_any_model_call(org, livekit, lambda_context, monkeypatch):
    from verriflo import db

    room = open_class(org, livekit, lambda_context)
    db.collection("balances").update_one({"_id": org.id}, {"$set": {"creditsMilli": 0}})
    model = ScriptedProvider(pieces=["never"])
    monkeypatch.setattr(answering, "provider", lambda: model)
    reply = call(handler, tutor_event("chat_stream", org.headers, question(room)), lambda_context)
    assert reply.status == 402 and reply.body["error"] == "INSUFFICIENT_CREDITS" and model.calls == []


def test_provider_failure_mid_stream_sends_an_error_event_then_done_and_records_a_failed_exchange(
    classroom: Classroom, lambda_context, monkeypatch
):
    model = ScriptedProvider(pieces=["Force ", "equals ", "mass ", "times"], fail_after=2)
    monkeypatch.setattr(answering, "provider", lambda: model)
    reply, events = ask_stream(classroom, lambda_context, question(classroom))
    assert reply.status == 200
    assert events[:2] == [{"text": "Force ", "usage": None}, {"text": "equals ", "usage": None}]
    assert events[2]["error"] == "UPSTREAM_ERROR" and events[2]["usage"] is None and events[2]["message"]
    assert events[3] == "[DONE]" and len(events) == 4
    (stored,) = interactions(classroom.org.id)
    assert (
        stored["status"] == "failed"
        and stored["error"] == "UPSTREAM_ERROR"
        and stored["answer"] == "Force equals "
    )
    assert ledger_entries(classroom.org.id) == []  # a failed answer is not charged
    whole = call(handler, tutor_event("chat", classroom.headers, question(classroom)), lambda_context)
    assert whole.status == 502 and whole.body["error"] == "UPSTREAM_ERROR"


def test_a_spoken_question_is_transcribed_and_answered_in_text_and_speech(
    classroom: Classroom, lambda_context
):
    add_notes(classroom, lambda_context)
    audio = base64.b64encode(spoken_wav("Please tell me what inertia means in physics.")).decode()
    body = question(classroom, None, audio=audio, responseModality="both")
    reply = call(handler, tutor_event("chat", classroom.headers, body), lambda_context)
    assert reply.status == 200, reply.body
    data = reply.body["data"]
    assert "inertia" in data["transcript"].lower() and reply.body["requestModality"] == "audio"
    assert "tendency of a body" in reply.body["text"]
    assert (
        base64.b64decode(reply.body["audio"])[:3] in (b"ID3", b"\xff\xfb", b"\xff\xf3")
        or base64.b64decode(reply.body["audio"])[0] == 0xFF
    )
    _, events = ask_stream(classroom, lambda_context, body)
    spoken = [e for e in events[:-1] if isinstance(e, dict) and e.get("audio")]
    assert spoken and all(e["mimeType"] == "audio/mpeg" and e["usage"] is None for e in spoken)
    # The stream's first event is the transcript line, the same as the whole answer's.
    assert events[0] == {"text": "", "transcript": data["transcript"], "usage": None}
    assert [e for e in events[1:-1] if "transcript" in e] == []
    _, typed = ask_stream(classroom, lambda_context, question(classroom, "What is inertia?"))
    assert not any("transcript" in e for e in typed[:-1])  # nothing was spoken


ALGEBRA = """# Solving 2x + 3 = 13

First subtract 3 from both sides to get 2x = 10. Then divide both sides by 2. So x = 5.
"""
ALGEBRA_PASSAGE = "First subtract 3 from both sides to get 2x = 10. Then divide both sides by 2. So x = 5."
FIVE = re.compile(r"\b5\b")  # the answer


def _hint_mode(room: Classroom, ctx, mode: str = "hints") -> None:
    reply = call(
        handler, tutor_event("settings_put", room.headers, {"mode": mode}, room_id=room.room_id), ctx
    )
    assert reply.status == 200, reply.body


def _asked(room: Classroom, ctx, text: str, uid: str = "s-1") -> tuple[str, list[dict]]:
    reply, events = ask_stream(room, ctx, question(room, text, uid=uid))
    assert reply.status == 200, reply.body
    return "".join(e["text"] for e in events[:-2]), events[-2]["sources"]


def test_hints_lead_to_the_answer_one_level_per_repeated_question_without_stating_it_early(
    org, livekit, lambda_context
):
    room = open_class(org, livekit, lambda_context, students=("s-1", "s-2"))
    add_notes(room, lambda_context, ALGEBRA, title="Algebra notes")
    add_notes(room, lambda_context)
    _hint_mode(room, lambda_context)
    asked = "What is x in 2x + 3 = 13?"
    said, shown = [], []
    for _ in range(5):
        text, sources = _asked(room, lambda_context, asked)
        (material,) = [s for s in sources if s["kind"] == "material"]  # one passage, and only it
        assert len(sources) == 1 and material["title"] == "Algebra notes > Solving 2x + 3 = 13"
        said.append(text)
        shown.append(material["text"])
    assert [t.split(":")[0] for t in said] == [f"Hint {n} of 4" for n in (1, 2, 3, 4, 4)]
    # Level 1 names where to look and asks a guiding question: nothing of the passage.
    assert "Algebra notes > Solving 2x + 3 = 13" in said[0] and "Ask yourself" in said[0]
    assert shown[0] == "" and not any(w in said[0] for w in ("subtract", "divide", "10"))
    # Levels 1 to 3 never state the answer, in the text or in the sources.
    assert not any(FIVE.search(t) for t in said[:3] + shown[:3]), said[:3]
    assert "First ___ 3 from both ___" in said[1] and "First s_______ 3 from both s____" in said[2]
    assert "x = 5" in said[3] and shown[3] == ALGEBRA_PASSAGE and said[4] == said[3]
    visible = [len(re.findall(r"[^\W_]", s)) for s in shown[:4]]
    assert visible[0] < visible[1] < visible[2] < visible[3]  # each level reveals more
    # The level is the student's own and the question's own: another student, or another question of
    # the same student, starts again at hint 1.
    other_student, _ = _asked(room, lambda_context, asked, uid="s-2")
    other_question, _ = _asked(room, lambda_context, "What is inertia?")
    assert other_student.startswith("Hint 1 of 4") and not FIVE.search(other_student)
    assert other_question.startswith("Hint 1 of 4") and "Inertia" in other_question
    # Explain mode answers in full, with every relevant passage.
    _hint_mode(room, lambda_context, "explain")
    full, sources = _asked(room, lambda_context, asked)
    assert "x = 5" in full and any(s["text"] == ALGEBRA_PASSAGE for s in sources)
    modes = [d["mode"] for d in sorted(interactions(org.id), key=lambda d: d["createdAt"])]
    assert modes == ["hints"] * 7 + ["explain"]


def test_explain_mode_asked_before_does_not_count_as_hints_given(classroom: Classroom, lambda_context):
    add_notes(classroom, lambda_context, ALGEBRA, title="Algebra notes")
    asked = "What is x in 2x + 3 = 13?"
    explained, _ = _asked(classroom, lambda_context, asked)
    assert "x = 5" in explained
    _hint_mode(classroom, lambda_context)
    first_hint, _ = _asked(classroom, lambda_context, asked)
    assert first_hint.startswith("Hint 1 of 4") and not FIVE.search(first_hint)


def test_earlier_exchanges_of_the_class_are_part_of_the_context(org, livekit, lambda_context):
    room = open_class(org, livekit, lambda_context, students=("s-1", "s-2"))
    add_notes(room, lambda_context)
    ask_stream(room, lambda_context, question(room, "What is inertia?"))
    _, events = ask_stream(room, lambda_context, question(room, "What is inertia exactly?", uid="s-2"))
    earlier = [s for s in events[-2]["sources"] if s["kind"] == "earlier"]
    assert earlier and "What is inertia?" in earlier[0]["text"]


def test_a_configured_model_gets_the_class_the_pedagogy_and_the_students_earlier_turns(
    classroom: Classroom, lambda_context, monkeypatch
):
    from verriflo_ai.settings import ai_settings

    add_notes(classroom, lambda_context)
    model = ScriptedProvider(pieces=["Think about ", "what F = m a tells you."])
    monkeypatch.setattr(answering, "provider", lambda: model)
    monkeypatch.setenv("AI_PROVIDER", "openai")
    ai_settings.cache_clear()
    try:
        call(
            handler,
            tutor_event(
                "settings_put",
                classroom.headers,
                {"mode": "hints", "topic": "Newton's laws"},
                room_id=ROOM_ID,
            ),
            lambda_context,
        )
        ask_stream(classroom, lambda_context, question(classroom, "What is inertia?"))
        _, events = ask_stream(classroom, lambda_context, question(classroom))
    finally:
        ai_settings.cache_clear()
    request = model.calls[-1]
    assert "Physics 101" in request.system and "Newton's laws" in request.system
    assert "Do NOT give the final answer" in request.system and "hint 1 of 4" in request.system
    assert [m.role for m in request.history] == ["user", "assistant"] and request.history[
        0
    ].text == "What is inertia?"
    assert any("mass multiplied by its acceleration" in p.text for p in request.passages)
    assert "".join(e["text"] for e in events[:-2]) == "Think about what F = m a tells you."
    # The model reads the passages; the student's sources show no more than the first hint does.
    material = [s for s in events[-2]["sources"] if s["kind"] == "material"]
    assert material and all(s["text"] == "" for s in material)
