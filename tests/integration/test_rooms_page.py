"""The classroom page in real headless Chromium: built from livekit-client, loaded with a token from
POST /v1/room/create (in-process, against the LiveKit stand-in), embedded in an iframe as a host app
embeds it. It must render what the token's role and customization allow, say clearly that it cannot
connect (the stand-in speaks no WebRTC), and post its messages to the parent window."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from livekit_support import LIVE_UI, LiveKit, fund, rooms_event, run_page_script, serve_page
from rooms.handler import handler
from support import ROOT, api_event, call

pytest_plugins = ("livekit_support",)
ARTIFACTS = ROOT / "tests" / "artifacts"


@pytest.fixture
def page_server(built_page, livekit: LiveKit, tmp_path):
    """The built page served as the bucket serves it, with config.json pointing at the stand-in."""
    with serve_page(built_page, {"livekitUrl": livekit.url.replace("http", "ws")}, tmp_path) as origin:
        yield origin


def drive(url: str, **options) -> dict:
    """Run the page in Chromium; what it showed and posted."""
    return run_page_script("drive.mjs", {"url": url, **options})


def local(iframe_url: str, base: str) -> str:
    # iframeUrl names the stack's bucket URL; the same path is served here by the test server.
    return iframe_url.replace("http://127.0.0.1:4566", base)


def test_teacher_page_shows_lobby_title_and_teacher_controls(
    org, livekit: LiveKit, page_server, lambda_context
):
    fund(org.id)
    body = {
        "roomId": "page-1",
        "title": "Algebra with Ada",
        "participant": {"uid": "t-1", "name": "Ada", "role": "TEACHER"},
        "customization": {"showLobby": True, "theme": "dark", "showLogo": False, "needChat": True},
    }
    created = call(
        handler, api_event("rooms/create.json", headers=org.headers, body=body), lambda_context
    ).data
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "classroom-teacher.png"
    result = drive(
        local(created["iframeUrl"], page_server), join=True, fullscreen=True, close=True, screenshot=str(shot)
    )
    first, after = result["first"], result["after"]
    assert first["data"]["state"] == "lobby" and first["visible"]["lobby"]
    assert first["text"]["lobbyTitle"] == "Algebra with Ada" and first["text"]["title"] == "Algebra with Ada"
    assert first["visible"]["header"] and not first["visible"]["logo"] and first["theme"] == "dark"
    assert first["text"]["me"] == "Ada" and first["text"]["role"] == "TEACHER"
    assert first["enabled"]["mic"] and first["enabled"]["camera"] and first["enabled"]["screen"]
    assert first["enabled"]["chat-panel"] and not first["enabled"]["hand"]  # teachers publish data, no hand
    assert "token=" not in first["location"]  # the token left the address bar
    # No LiveKit media server here: the page must say so plainly and offer a retry.
    assert after["data"]["state"] == "error" and after["text"]["noticeTitle"] == "Cannot connect to the class"
    assert after["visible"]["retry"] and after["visible"]["close"]
    assert (
        not after["visible"]["stage"] and not after["visible"]["controls"] and not after["visible"]["lobby"]
    )
    assert {"type": "verriflo_fullscreen", "action": "enter", "isFullscreen": True} in result["messages"]
    assert {"type": "verriflo_fullscreen", "action": "exit", "isFullscreen": False} in result["messages"]
    assert result["messages"][-1] == {"type": "verriflo_classroom", "action": "close"}
    assert shot.stat().st_size > 5000


def test_student_page_follows_customization(org, livekit: LiveKit, page_server, lambda_context):
    fund(org.id)
    body = {
        "roomId": "page-2",
        "title": "History",
        "participant": {"uid": "t-1", "name": "Ada"},
        "customization": {"needChat": False, "showClassTitle": False},
    }
    call(handler, api_event("rooms/create.json", headers=org.headers, body=body), lambda_context)
    join = {
        "participant": {"uid": "s-9", "name": "Sam", "role": "STUDENT"},
        "customization": {
            "showLobby": False,
            "showParticipantName": False,
            "theme": "light",
            "showHeader": True,
        },
    }
    joined = call(handler, rooms_event("join", org.headers, join, room_id="page-2"), lambda_context).data
    result = drive(
        local(joined["iframeUrl"], page_server), screenshot=str(ARTIFACTS / "classroom-student.png")
    )
    first = result["first"]
    # No lobby: it went straight to connecting, and failed clearly.
    assert first["data"]["state"] == "error" and not first["visible"]["lobby"]
    assert first["text"]["noticeTitle"] == "Cannot connect to the class"
    assert not first["visible"]["title"] and first["text"]["me"] == "" and first["theme"] == "light"
    assert not first["enabled"]["mic"] and not first["enabled"]["camera"] and not first["enabled"]["screen"]
    assert first["enabled"]["hand"] and not first["enabled"]["chat-panel"]
    assert first["data"]["role"] == "STUDENT" and first["data"]["needChat"] == "false"


def test_page_without_a_token_explains_itself(page_server):
    result = drive(f"{page_server}{urlsplit(LIVE_UI).path}/iframe/live", close=True)
    assert result["first"]["text"]["noticeTitle"] == "No classroom token"
    assert result["messages"] == [{"type": "verriflo_classroom", "action": "close"}]


def test_validate_domain_refuses_to_open_outside_a_host_app(
    org, livekit: LiveKit, page_server, lambda_context
):
    fund(org.id)
    body = {
        "roomId": "page-3",
        "title": "Embedded only",
        "participant": {"uid": "t-1", "name": "Ada"},
        "customization": {"validateDomain": True},
    }
    created = call(
        handler, api_event("rooms/create.json", headers=org.headers, body=body), lambda_context
    ).data
    alone = drive(local(created["iframeUrl"], page_server), top=True)
    assert alone["first"]["text"]["noticeTitle"] == "Open this class from your school"
    embedded = drive(local(created["iframeUrl"], page_server))
    assert embedded["first"]["data"]["state"] == "lobby"


def test_a_teacher_removes_a_student_from_the_page_and_a_student_cannot(
    org, livekit: LiveKit, page_server, lambda_context
):
    fund(org.id)
    body = {
        "roomId": "page-4",
        "title": "Moderated",
        "participant": {"uid": "t-1", "name": "Ada", "role": "TEACHER"},
    }
    teacher = call(
        handler, api_event("rooms/create.json", headers=org.headers, body=body), lambda_context
    ).data
    join = {"participant": {"uid": "s-1", "name": "Sam", "role": "STUDENT"}}
    student = call(handler, rooms_event("join", org.headers, join, room_id="page-4"), lambda_context).data
    name = f"{org.id}.page-4"
    livekit.join(name, student["token"])
    livekit.join(name, teacher["token"])

    def present() -> set[str]:
        room = next(r for r in livekit.stand_in.state()["rooms"] if r["name"] == name)
        return {p["identity"] for p in room["participants"]}

    refused = drive(
        local(student["iframeUrl"], page_server),
        evaluate="window.verrifloClassroom.moderate('remove', 't-1')",
    )
    assert "permission" in refused["evaluated"]["error"] and present() == {"s-1", "t-1"}
    done = drive(
        local(teacher["iframeUrl"], page_server),
        evaluate="window.verrifloClassroom.moderate('remove', 's-1')",
    )
    assert "ok" in done["evaluated"], done["evaluated"]
    assert present() == {"t-1"}


def test_a_link_the_server_refuses_says_so(org, livekit: LiveKit, page_server, lambda_context):
    from livekit.api import AccessToken, VideoGrants

    forged = (
        AccessToken(livekit.api_key, "not-the-secret-" + "x" * 20)
        .with_identity("x")
        .with_name("X")
        .with_grants(VideoGrants(room_join=True, room=f"{org.id}.nope"))
        .to_jwt()
    )
    result = drive(f"{page_server}{urlsplit(LIVE_UI).path}/iframe/live?token={forged}", join=True)
    assert result["after"]["text"]["noticeTitle"] == "This classroom link was not accepted"
    assert not result["after"]["visible"]["retry"]


def test_a_hostile_participant_renders_as_text_and_the_list_survives(built_page):
    """Names, identities and metadata reach the page from other people's clients: a non-string or
    unknown role, HTML in a name or an identity, metadata that is not JSON, an attribute claiming a
    raised hand. Each row shows plain text, only our own roles are named, and no row breaks the list."""
    hostile = [
        {
            "identity": "s-1",
            "name": '<img src=x onerror="window.__pwned=1">',
            "metadata": '{"role": ["TEACHER"]}',
        },
        {"identity": "s-2", "name": "Eve", "metadata": '{"role": {"toLowerCase": 1}}'},
        {"identity": "s-3", "name": "Mal", "metadata": "<script>window.__pwned=2</script>"},
        {"identity": "s-4", "name": "Nul", "metadata": "null", "attributes": {"handRaised": "true"}},
        {"identity": "<b>s-5</b>", "name": 42, "metadata": '{"role": "teacher<script>"}'},
        {"identity": "s-6", "name": "Sam", "metadata": '{"role": "STUDENT"}'},
        {"identity": "t-1", "name": "Ada", "metadata": '{"role": "TEACHER"}', "mic": True},
    ]
    result = run_page_script("roster.mjs", {"participants": hostile, "raised": ["s-6"]})
    assert result["errors"] == [] and result["count"] == len(hostile)
    assert result["rows"] == [
        '<img src=x onerror="window.__pwned=1"> 🔇',
        "Eve 🔇",
        "Mal 🔇",
        "Nul 🔇",  # attributes are not hand raises: only the data messages the page collected are
        "<b>s-5</b> 🔇",
        "Sam · student✋ 🔇",
        "Ada · teacher 🎤",
    ]
    assert set(result["elements"]) == {"li", "span"}  # the HTML stayed text
    assert result["pwned"] is None and result["identities"][4] == "<b>s-5</b>"
