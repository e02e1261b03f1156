"""Live classrooms on the stack `make up` deploys: the rooms function behind API Gateway on
LocalStack, the LiveKit stand-in it starts (webhooks signed by it reach the deployed function), and
the classroom page served from the page bucket, opened in real headless Chromium."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
KEY = "VF-ORG-ID"


def _create(http: httpx.Client, api_url: str, key: str, **changes) -> httpx.Response:
    body = {
        "roomId": f"e2e-{uuid.uuid4().hex[:8]}",
        "title": "E2E Geometry",
        "participant": {"uid": "t-e2e", "name": "Tess Teacher", "role": "TEACHER"},
        "customization": {"showLobby": True, "theme": "dark", "needChat": True},
    } | changes
    return http.post(f"{api_url}/v1/room/create", headers={KEY: key}, json=body)


def test_create_gives_an_iframe_url_the_bucket_serves(
    http: httpx.Client, api_url: str, demo_key: str, e2e_stack: dict[str, str]
) -> None:
    reply = _create(http, api_url, demo_key)
    assert reply.status_code == 200, reply.text
    data = reply.json()["data"]
    assert data["room"]["sid"].startswith("RM_")
    assert data["iframeUrl"] == f"{e2e_stack['STACK_OUTPUT_LiveUiUrl']}/iframe/live?token={data['token']}"
    page = http.get(data["iframeUrl"])
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "assets/classroom-" in page.text


def test_classroom_page_from_the_stack_in_chromium(http: httpx.Client, api_url: str, demo_key: str) -> None:
    data = _create(http, api_url, demo_key).json()["data"]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / "classroom-e2e.png"
    options = {
        "url": data["iframeUrl"],
        "join": True,
        "close": True,
        "fullscreen": True,
        "screenshot": str(shot),
    }
    proc = subprocess.run(
        ["node", str(ROOT / "live" / "test" / "drive.mjs"), json.dumps(options)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    first, after = result["first"], result["after"]
    assert first["visible"]["lobby"] and first["text"]["title"] == "E2E Geometry" and first["theme"] == "dark"
    assert first["enabled"]["mic"] and first["enabled"]["screen"] and first["enabled"]["chat-panel"]
    assert after["text"]["noticeTitle"] == "Cannot connect to the class"  # the stand-in carries no media
    assert result["messages"][-1] == {"type": "verriflo_classroom", "action": "close"}
    assert any(m.get("type") == "verriflo_fullscreen" for m in result["messages"])
    assert shot.stat().st_size > 5000


def test_stand_in_webhooks_reach_the_deployed_function(
    http: httpx.Client, api_url: str, demo_key: str, demo_org_id: str, livekit_admin
) -> None:
    reply = _create(http, api_url, demo_key)
    room_id = reply.json()["data"]["room"]  # {"roomId", "sid"}
    token = reply.json()["data"]["token"]
    path = f"/admin/rooms/{demo_org_id}.{room_id['roomId']}/participants"
    livekit_admin("POST", path, {"token": token}, token=token)  # the browser joins with its token
    deadline = time.monotonic() + 30
    status = {}
    while time.monotonic() < deadline:  # bounded polling: the webhook travels stand-in -> API -> function
        status = http.get(f"{api_url}/v1/room/{room_id['roomId']}/status", headers={KEY: demo_key}).json()[
            "data"
        ]
        if status["participantCount"] == 1:
            break
        time.sleep(0.3)
    assert status["participantCount"] == 1 and status["hasTeacher"] and status["startedAt"]
    ended = http.delete(f"{api_url}/v1/room/{room_id['roomId']}", headers={KEY: demo_key})
    assert ended.status_code == 200 and ended.json()["data"]["participantsDisconnected"] == 1
    assert http.delete(f"{api_url}/v1/room/{room_id['roomId']}", headers={KEY: demo_key}).status_code == 410


def test_unsigned_webhook_and_keyless_room_calls_are_refused(http: httpx.Client, api_url: str) -> None:
    hook = http.post(
        f"{api_url}/v1/livekit/webhook",
        content=json.dumps({"event": "room_started", "id": "EV_x"}),
        headers={"Content-Type": "application/webhook+json"},
    )
    assert hook.status_code == 401 and hook.json()["error"] == "UNAUTHORIZED"
    assert http.post(f"{api_url}/v1/room/create", json={}).status_code == 401
    assert http.get(f"{api_url}/v1/room/anything/status").status_code == 401
