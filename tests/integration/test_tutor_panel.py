"""The tutor panel of the classroom page in real headless Chromium: the page (built from live/src)
served as the bucket serves it, the tutor's ASGI app under a real uvicorn as its API (another
origin, so CORS is real), the join token from the rooms function as the only credential. A student
asks and the answer renders progressively, with its sources; the teacher sees the exchange and
switches the tutor off. Screenshots are kept under tests/artifacts/."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

import pytest
from ai_support import ScriptedProvider
from ai_tutor import answering, streaming
from livekit_support import LIVE_UI, LiveKit, run_page_script, serve_page
from servers import asgi_server
from support import ROOT
from tutor_support import Classroom, add_notes

pytest_plugins = ("livekit_support", "tutor_support")
ARTIFACTS = ROOT / "tests" / "artifacts"
PIECES = [
    "Newton's second law ",
    "says the net force ",
    "on a body equals ",
    "its mass ",
    "times its ",
    "acceleration: F = m a.",
]


@pytest.fixture
def tutor_api():
    """The tutor's streamed/classroom routes under a real uvicorn (as behind the Lambda Web Adapter)."""
    with asgi_server(streaming.app) as url:
        yield url


@pytest.fixture
def page_server(built_page: Path, livekit: LiveKit, tutor_api: str, tmp_path: Path):
    """The built page with config.json naming LiveKit (the stand-in) and the tutor API."""
    config = {"livekitUrl": livekit.url.replace("http", "ws"), "apiUrl": tutor_api}
    with serve_page(built_page, config, tmp_path) as origin:
        yield f"{origin}{urlsplit(LIVE_UI).path}"


def drive(**options) -> dict:
    return run_page_script("tutor.mjs", options)


def test_a_student_asks_and_watches_the_answer_stream_in_then_the_teacher_switches_the_tutor_off(
    classroom: Classroom, page_server: str, lambda_context, monkeypatch
):
    from tutor_support import interactions
    from verriflo import db

    add_notes(classroom, lambda_context)
    model = ScriptedProvider(pieces=PIECES, delay_s=0.35)
    monkeypatch.setattr(answering, "provider", lambda: model)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "tutor-panel-student.png"
    student = drive(
        url=f"{page_server}/iframe/live?token={classroom.student_token}",
        ask="What does Newton's second law say?",
        screenshot=str(shot),
    )
    assert student["view"] == "student", student
    assert student["final"] == {"text": "".join(PIECES), "state": "done"}, student
    # Rendered progressively: several partial texts, each a prefix of the next, spread over time.
    partial_texts = [g for g in student["growth"] if g["state"] == "streaming" and g["text"]]
    assert len(partial_texts) >= 3, student["growth"]
    assert all(
        b["text"].startswith(a["text"]) and len(b["text"]) > len(a["text"])
        for a, b in zip(partial_texts, partial_texts[1:], strict=False)
    )
    assert partial_texts[-1]["ms"] - partial_texts[0]["ms"] > 700
    assert any("Lecture notes" in s for s in student["sources"]), student["sources"]
    assert any("What does Newton's second law say?" in e for e in student["exchanges"])
    assert shot.stat().st_size > 5000
    (stored,) = interactions(classroom.org.id)
    assert stored["studentUid"] == "s-1" and stored["status"] == "completed"

    teacher_shot = ARTIFACTS / "tutor-panel-teacher.png"
    teacher = drive(
        url=f"{page_server}/iframe/live?token={classroom.teacher_token}",
        toggle=True,
        screenshot=str(teacher_shot),
    )
    assert teacher["view"] == "teacher" and teacher["status"].startswith("Tutor off"), teacher
    assert any("s-1" in e and "Newton's second law" in e for e in teacher["exchanges"]), teacher["exchanges"]
    settings = db.collection("tutor_rooms").find_one({"roomId": classroom.room_id})
    assert settings["enabled"] is False
