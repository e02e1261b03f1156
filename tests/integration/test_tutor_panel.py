"""The tutor panel of the classroom page in real headless Chromium: the page (built from live/src)
served as the bucket serves it, the tutor's ASGI app under a real uvicorn as its API (another
origin, so CORS is real), the join token from the rooms function as the only credential. A student
asks and the answer renders progressively, with its sources; the teacher sees the exchange and
switches the tutor off. Screenshots are kept under tests/artifacts/."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from ai_support import ScriptedProvider
from ai_tutor import logic, streaming
from livekit_support import LIVE_UI, LiveKit
from servers import asgi_server
from support import ROOT
from tutor_support import Classroom, add_notes

pytest_plugins = ("livekit_support", "tutor_support")
LIVE = ROOT / "live"
ARTIFACTS = ROOT / "tests" / "artifacts"
PIECES = [
    "Newton's second law ",
    "says the net force ",
    "on a body equals ",
    "its mass ",
    "times its ",
    "acceleration: F = m a.",
]


@pytest.fixture(scope="module")
def built_page() -> Path:
    """live/dist, built now from the sources (npm ci first if node_modules is missing)."""
    if not shutil.which("node") or not Path("/usr/bin/chromium").exists():
        pytest.fail("the page tests need node and Debian chromium (make deps installs them)")
    if not (LIVE / "node_modules" / "livekit-client").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=LIVE, check=True, timeout=300)
    subprocess.run(["node", "build.mjs"], cwd=LIVE, check=True, timeout=120, capture_output=True)
    return LIVE / "dist"


@pytest.fixture
def tutor_api():
    """The tutor's streamed/classroom routes under a real uvicorn (as behind the Lambda Web Adapter)."""
    with asgi_server(streaming.app) as url:
        yield url


class _Static(SimpleHTTPRequestHandler):
    def guess_type(self, path):  # noqa: ANN001 - http.server's signature
        return "text/html; charset=utf-8" if str(path).endswith("/iframe/live") else super().guess_type(path)

    def log_message(self, *args):  # noqa: ANN002
        pass


@pytest.fixture
def page_server(built_page: Path, livekit: LiveKit, tutor_api: str, tmp_path: Path):
    """The built page with config.json naming LiveKit (the stand-in) and the tutor API."""
    root = tmp_path / "site"
    prefix = root / urlsplit(LIVE_UI).path.strip("/")
    shutil.copytree(built_page, prefix)
    (prefix / "iframe" / "config.json").write_text(
        json.dumps({"livekitUrl": livekit.url.replace("http", "ws"), "apiUrl": tutor_api})
    )
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(_Static, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}{urlsplit(LIVE_UI).path}"
    server.shutdown()
    server.server_close()


def drive(**options) -> dict:
    reply = subprocess.run(
        ["node", str(LIVE / "test" / "tutor.mjs"), json.dumps(options)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert reply.returncode == 0, reply.stderr[-2000:]
    return json.loads(reply.stdout.strip().splitlines()[-1])


def test_a_student_asks_and_watches_the_answer_stream_in_then_the_teacher_switches_the_tutor_off(
    classroom: Classroom, page_server: str, lambda_context, monkeypatch
):
    from tutor_support import interactions
    from verriflo import db

    add_notes(classroom, lambda_context)
    model = ScriptedProvider(pieces=PIECES, delay_s=0.35)
    monkeypatch.setattr(logic, "provider", lambda: model)
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
