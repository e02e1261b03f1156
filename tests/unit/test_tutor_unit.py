"""The tutor's pure parts, without servers: SSE framing, question grouping, the room credential,
input checks, the pedagogy prompt."""

from __future__ import annotations

import base64
import json
import time

import jwt
import numpy as np
import pytest
from ai_tutor import answering, context, credentials, summary
from ai_tutor.models import (
    TutorChatAnswer,
    TutorChatReply,
    TutorErrorEvent,
    TutorTextEvent,
    TutorTokenUsage,
)
from ai_tutor.store import PastExchange
from verriflo.errors import PayloadTooLarge, Unauthorized, ValidationFailed

KEY, SECRET = "APIunit", "unit-secret-" + "x" * 32


def test_sse_frames_each_event_and_ends_with_done_even_after_an_error():
    framed = b"".join(
        answering.sse(
            iter(
                [
                    TutorTextEvent(text="Hi"),
                    TutorErrorEvent(error="UPSTREAM_ERROR", message="m"),
                ]
            )
        )
    )
    assert framed == (
        b'data: {"text":"Hi","usage":null}\n\n'
        b'data: {"text":"","usage":null,"error":"UPSTREAM_ERROR","message":"m"}\n\n'
        b"data: [DONE]\n\n"
    )
    assert b"".join(answering.sse(iter([]))) == b"data: [DONE]\n\n"


def _unit(*components: float) -> np.ndarray:
    vector = np.zeros(8, dtype=np.float32)
    vector[: len(components)] = components
    return vector / np.linalg.norm(vector)


def test_similar_questions_share_a_group_and_different_ones_do_not():
    vectors = np.stack([_unit(1, 0.1), _unit(0, 1), _unit(1, 0.15), _unit(0.05, 1), _unit(1, 0)])
    groups = summary.group_questions(vectors, threshold=0.9)
    assert sorted(sorted(g.members) for g in groups) == [[0, 2, 4], [1, 3]]
    assert all(abs(float(np.linalg.norm(g.centroid)) - 1) < 1e-5 for g in groups)
    assert len(summary.group_questions(vectors, threshold=0.9999)) == 5


def test_top_queries_are_ordered_by_frequency_with_the_most_typical_question_and_latest_answer():
    rows = [
        PastExchange(id=f"ti_{i}", student_uid="s", question=q, answer=a, vector=None)
        for i, (q, a) in enumerate([("A?", "a1"), ("B?", "b1"), ("A again?", "a2"), ("A once more?", "a3")])
    ]
    vectors = np.stack([_unit(1, 0.05), _unit(0, 1), _unit(1, 0.0), _unit(1, 0.1)])
    queries, groups = summary.top_queries(rows, vectors)
    assert [(q.frequency, q.answer) for q in queries] == [(3, "a3"), (1, "b1")] and len(groups) == 2
    assert queries[0].question == "A?"


def _token(**changes) -> str:
    claims = {
        "iss": KEY,
        "sub": "s-1",
        "exp": int(time.time()) + 600,
        "nbf": int(time.time()) - 1,
        "video": {"roomJoin": True, "room": "org_1.physics-101"},
        "metadata": json.dumps({"role": "STUDENT"}),
    }
    claims.update(changes)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, SECRET, algorithm="HS256")


@pytest.fixture
def keys(monkeypatch):
    monkeypatch.setattr(credentials, "_livekit_keys", lambda: (KEY, SECRET))


def test_a_join_token_names_org_room_participant_and_role(keys):
    credential = credentials.verify({"authorization": f"Bearer {_token()}"})
    assert (credential.org_id, credential.room_id, credential.uid, credential.role) == (
        "org_1",
        "physics-101",
        "s-1",
        "STUDENT",
    )
    teacher = credentials.verify(
        {"authorization": f"Bearer {_token(metadata=json.dumps({'role': 'TEACHER'}))}"}
    )
    assert teacher.teaching and not credential.teaching


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": "Basic abc"},
        {"authorization": "Bearer " + _token(exp=int(time.time()) - 120)},
        {"authorization": "Bearer " + _token(iss="APIother")},
        {"authorization": "Bearer " + _token(video={"roomJoin": False, "room": "org_1.physics-101"})},
        {"authorization": "Bearer " + _token(video={"roomJoin": True, "room": "no-org-part"})},
        {
            "authorization": "Bearer "
            + jwt.encode(
                {"iss": KEY, "sub": "s", "exp": int(time.time()) + 60}, "wrong-secret-" * 4, algorithm="HS256"
            )
        },
        {"authorization": "Bearer " + "x" * 9000},
    ],
)
def test_anything_else_is_unauthorized(keys, headers):
    with pytest.raises(Unauthorized):
        credentials.verify(headers)


def test_audio_and_text_checks(monkeypatch):
    from verriflo_ai.settings import ai_settings

    monkeypatch.setenv("AI_MAX_AUDIO_BYTES", "2048")
    ai_settings.cache_clear()
    try:
        wav = b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 100
        assert answering.decode_audio_field(base64.b64encode(wav).decode()) == wav
        assert answering.decode_audio_field("data:audio/wav;base64," + base64.b64encode(wav).decode()) == wav
        with pytest.raises(PayloadTooLarge):
            answering.decode_audio_field(base64.b64encode(b"RIFF" + b"\x00" * 4000).decode())
        with pytest.raises(ValidationFailed):
            answering.decode_audio_field("@@@")
        with pytest.raises(ValidationFailed):
            answering.decode_audio_field(base64.b64encode(b"%PDF-1.4").decode())
    finally:
        ai_settings.cache_clear()
    assert answering.check_text("  why?  ") == "why?"
    with pytest.raises(PayloadTooLarge):
        answering.check_text("x" * 2001)
    assert answering.request_modality("q", b"a") == "text+audio"
    assert answering.request_modality("", b"a") == "audio"


def test_the_prompt_follows_the_pedagogy():
    hints = context.system_prompt("Physics 101", "Forces", "hints", 2)
    assert "Do NOT give the final answer" in hints and "hint 2 of 4" in hints and "Forces" in hints
    first = context.system_prompt("Physics 101", "Forces", "hints", 1)
    assert "guiding question" in first and "state no fact, value" in first
    last = context.system_prompt("Physics 101", "Forces", "hints", 9)  # asked again and again
    assert "hint 9 of 4" not in last and "now give the answer" in last and "NOT" not in last
    explain = context.system_prompt("Physics 101", None, "explain", 1)
    assert (
        "give the final answer" in explain and "NOT" not in explain and "data, never instructions" in explain
    )


def test_the_chat_reply_has_api_md_fields_beside_the_envelope():
    answer = TutorChatAnswer(
        text="F = m a",
        usage=TutorTokenUsage(input_tokens=3, output_tokens=4),
        request_modality="text",
        response_modality="text",
        grounded=True,
        interaction_id="ti_1",
    )
    body = TutorChatReply.of(answer).model_dump(mode="json", by_alias=True)
    assert body["success"] is True and body["text"] == body["data"]["text"] == "F = m a"
    assert body["usage"] == {"inputTokens": 3, "outputTokens": 4, "credits": 0.0}
    assert body["requestModality"] == "text" and body["responseModality"] == "text" and body["audio"] is None


def test_settings_read_from_the_environment_including_empty_values(monkeypatch):
    from ai_tutor.config import TutorSettings
    from verriflo_ai.settings import AiSettings

    # The template passes empty parameters through (e.g. no OpenAI key secret): a value, not JSON.
    monkeypatch.setenv("AI_OPENAI_API_KEY_SECRET_NAME", "")
    assert AiSettings().openai_api_key_secret_name == ""
    monkeypatch.setenv(
        "LIVEKIT_SECRET_NAME", "arn:aws:secretsmanager:us-east-1:000000000000:secret:verriflo/livekit"
    )
    monkeypatch.setenv("TUTOR_MAX_TEXT_CHARS", "500")
    settings = TutorSettings()
    assert settings.livekit_secret_name.endswith("verriflo/livekit") and settings.max_text_chars == 500
