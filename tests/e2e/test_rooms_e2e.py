"""Live classrooms on the stack `make up` deploys: the rooms function behind API Gateway on
LocalStack, the LiveKit stand-in it starts (webhooks signed by it reach the deployed function), the
classroom page served from the page bucket, opened in real headless Chromium, and a recording that
the transcoder turns into a video announced to webhook receivers."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
from livekit_support import stand_in_call

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


def _until(fetch, done, timeout: float = 60):
    """Bounded polling: `fetch()` until `done(value)`; the last value."""
    deadline = time.monotonic() + timeout
    value = fetch()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.5)
        value = fetch()
    return value


def _refused(url: str, method: str, path: str, body: dict | None, token: str) -> int:
    import urllib.error

    try:
        stand_in_call(url, method, path, body, token)
    except urllib.error.HTTPError as exc:
        return exc.code
    return 200


def test_another_orgs_join_tokens_cannot_reach_a_recording_that_completes(
    http: httpx.Client,
    api_url: str,
    demo_key: str,
    demo_org_id: str,
    e2e_stack: dict[str, str],
    livekit_admin,
    verriflo_cli,
) -> None:
    """Issue 12, through the deployed stack: the demo org records a class through the API; another org,
    holding the creator's and an ADMIN's join tokens of its own room, can neither list, stop nor start
    egress, nor list every room; the recording completes, lands where our API asked, and is served."""
    headers = {KEY: demo_key}
    victim = _create(http, api_url, demo_key).json()["data"]
    room_id = victim["room"]["roomId"]
    name = f"{demo_org_id}.{room_id}"
    livekit_admin(
        "POST", f"/admin/rooms/{name}/participants", {"token": victim["token"]}, token=victim["token"]
    )
    status = _until(
        lambda: http.get(f"{api_url}/v1/room/{room_id}/status", headers=headers).json()["data"],
        lambda s: s["hasTeacher"],
    )
    assert status["hasTeacher"]
    started = http.post(f"{api_url}/v1/room/{room_id}/recording/start", headers=headers, json={})
    assert started.status_code == 200, started.text
    egress_id = started.json()["data"]["egressId"]

    attacker = verriflo_cli("org", "create", f"e2e-attacker-{uuid.uuid4().hex[:8]}", "--credits", "1000")
    evil = _create(http, api_url, attacker["apiKey"]).json()["data"]
    admin_body = {"participant": {"uid": "a-1", "name": "Root", "role": "ADMIN"}}
    admin = http.post(
        f"{api_url}/v1/room/{evil['room']['roomId']}/join", headers={KEY: attacker["apiKey"]}, json=admin_body
    ).json()["data"]
    stolen = {"filepath": "stolen/class.mp4", "s3": {"bucket": "attacker-bucket"}}
    attacks = [
        ("ListEgress", {}),
        ("StopEgress", {"egressId": egress_id}),
        ("StartRoomCompositeEgress", {"roomName": name, "fileOutputs": [stolen]}),
    ]
    livekit = e2e_stack["LIVEKIT_URL"]
    for token in (evil["token"], admin["token"]):
        for method, body in attacks:
            assert _refused(livekit, "POST", f"/twirp/livekit.Egress/{method}", body, token) == 403, method
        assert _refused(livekit, "GET", "/admin/state", None, token) == 403
        assert (
            _refused(livekit, "POST", "/twirp/livekit.RoomService/ListParticipants", {"room": name}, token)
            == 403
        )

    assert http.get(f"{api_url}/v1/room/{room_id}/status", headers=headers).json()["data"]["isRecording"]
    stopped = http.post(f"{api_url}/v1/room/{room_id}/recording/stop", headers=headers, json={})
    assert stopped.status_code == 200, stopped.text
    listed = _until(
        lambda: http.get(f"{api_url}/v1/room/{room_id}/recording/list", headers=headers).json()["data"],
        lambda d: d["recordings"] and d["recordings"][0]["status"] != "EGRESS_ENDING",
        timeout=90,
    )
    (recording,) = listed["recordings"]
    assert recording["egressId"] == egress_id and recording["status"] == "EGRESS_COMPLETE"
    link = http.get(f"{api_url}/v1/room/{room_id}/recording/{egress_id}/download", headers=headers)
    assert link.status_code == 200 and f"recordings/{demo_org_id}/{room_id}/" in link.json()["data"]["url"]


def test_a_student_cannot_rewrite_their_role(
    http: httpx.Client,
    api_url: str,
    demo_key: str,
    demo_org_id: str,
    e2e_stack: dict[str, str],
    livekit_admin,
) -> None:
    headers = {KEY: demo_key}
    room_id = _create(http, api_url, demo_key).json()["data"]["room"]["roomId"]
    body = {"participant": {"uid": "s-e2e", "name": "Sly", "role": "STUDENT"}}
    token = http.post(f"{api_url}/v1/room/{room_id}/join", headers=headers, json=body).json()["data"]["token"]
    name = f"{demo_org_id}.{room_id}"
    livekit_admin("POST", f"/admin/rooms/{name}/participants", {"token": token}, token=token)
    claim = {"metadata": json.dumps({"role": "TEACHER"}), "name": "Head Teacher"}
    path = f"/admin/rooms/{name}/participants/s-e2e/metadata"  # the client SDK's setMetadata
    assert _refused(e2e_stack["LIVEKIT_URL"], "POST", path, claim, token) == 403
    people = _until(  # the role comes from our session record, made by LiveKit's webhook
        lambda: http.get(f"{api_url}/v1/room/{room_id}/participants", headers=headers).json()["data"],
        lambda d: d["participants"] and d["participants"][0]["role"],
    )
    assert [(p["uid"], p["role"]) for p in people["participants"]] == [("s-e2e", "STUDENT")]


def test_a_student_removed_before_connecting_is_turned_away_until_given_a_new_token(
    http: httpx.Client, api_url: str, demo_key: str, demo_org_id: str, livekit_admin
) -> None:
    headers = {KEY: demo_key}
    room_id = _create(http, api_url, demo_key, settings={"emptyTimeout": 1800}).json()["data"]["room"][
        "roomId"
    ]
    participants = f"{api_url}/v1/room/{room_id}/participants"

    def join() -> str:
        body = {"participant": {"uid": "s-e2e", "name": "Sam", "role": "STUDENT"}}
        reply = http.post(f"{api_url}/v1/room/{room_id}/join", headers=headers, json=body)
        assert reply.status_code == 200, reply.text
        return reply.json()["data"]["token"]

    def connect(token: str) -> None:  # the student's page connects to LiveKit with the token
        livekit_admin(
            "POST", f"/admin/rooms/{demo_org_id}.{room_id}/participants", {"token": token}, token=token
        )

    def state() -> tuple[list[str], int]:
        listed = http.get(participants, headers=headers).json()["data"]["participants"]
        count = http.get(f"{api_url}/v1/room/{room_id}/status", headers=headers).json()["data"]
        return [p["uid"] for p in listed], count["participantCount"]

    token = join()
    removed = http.delete(f"{participants}/s-e2e", headers=headers)
    assert removed.status_code == 200, removed.text
    assert removed.json()["data"] == {"roomId": room_id, "uid": "s-e2e", "removed": True, "connected": False}
    assert http.delete(f"{participants}/s-e2e", headers=headers).status_code == 404  # removed already
    assert http.delete(f"{participants}/s-none", headers=headers).status_code == 404  # never given a token
    connect(token)  # the old token still opens LiveKit: the webhook disconnects them
    assert _until(state, lambda s: s == ([], 0), timeout=60) == ([], 0)
    connect(join())  # the org's server lets them back in
    assert _until(state, lambda s: s == (["s-e2e"], 1), timeout=60) == (["s-e2e"], 1)
    assert http.delete(f"{api_url}/v1/room/{room_id}", headers=headers).status_code == 200


def test_unsigned_webhook_and_keyless_room_calls_are_refused(http: httpx.Client, api_url: str) -> None:
    hook = http.post(
        f"{api_url}/v1/livekit/webhook",
        content=json.dumps({"event": "room_started", "id": "EV_x"}),
        headers={"Content-Type": "application/webhook+json"},
    )
    assert hook.status_code == 401 and hook.json()["error"] == "UNAUTHORIZED"
    assert http.post(f"{api_url}/v1/room/create", json={}).status_code == 401
    assert http.get(f"{api_url}/v1/room/anything/status").status_code == 401


def test_rooms_are_listed_newest_first_with_live_state_and_only_for_their_org(
    http: httpx.Client, api_url: str, demo_key: str, verriflo_cli, livekit_admin
) -> None:
    org = verriflo_cli("org", "create", f"e2e-list-{uuid.uuid4().hex[:8]}", "--credits", "1000")
    headers = {KEY: org["apiKey"]}
    made = [_create(http, api_url, org["apiKey"]).json()["data"] for _ in range(3)]
    ids = [m["room"]["roomId"] for m in made]
    first = made[0]
    # the first class starts (its teacher connects: the stand-in's webhooks reach the function)
    livekit_admin(
        "POST",
        f"/admin/rooms/{org['orgId']}.{ids[0]}/participants",
        {"token": first["token"]},
        token=first["token"],
    )
    assert http.delete(f"{api_url}/v1/room/{ids[1]}", headers=headers).status_code == 200

    def rooms(**query) -> dict:
        reply = http.get(f"{api_url}/v1/rooms", headers=headers, params=query)
        assert reply.status_code == 200, reply.text
        return reply.json()["data"]

    page = _until(lambda: rooms(), lambda d: d["rooms"][-1]["participantsNow"] == 1, timeout=30)
    assert [r["roomId"] for r in page["rooms"]] == list(reversed(ids)) and page["nextCursor"] is None
    started = page["rooms"][-1]
    assert started["status"] == "live" and started["startedAt"] and started["totalParticipants"] == 1
    assert [r["roomId"] for r in rooms(status="finished")["rooms"]] == [ids[1]]
    one = rooms(limit=1)
    assert [r["roomId"] for r in one["rooms"]] == [ids[2]] and one["nextCursor"]
    assert [r["roomId"] for r in rooms(limit=2, cursor=one["nextCursor"])["rooms"]] == [ids[1], ids[0]]
    bad = http.get(
        f"{api_url}/v1/rooms",
        headers=headers,
        params={"from": "2030-01-02T00:00:00Z", "to": "2030-01-01T00:00:00Z"},
    )
    assert bad.status_code == 400 and bad.json()["error"] == "VALIDATION_ERROR"
    theirs = http.get(f"{api_url}/v1/rooms", headers={KEY: demo_key}, params={"limit": 100}).json()["data"]
    assert not {r["roomId"] for r in theirs["rooms"]} & set(ids)


# --- a recording is a video (issue 15, items 5 and 6) ----------------------------------------------


def _endpoint(http: httpx.Client, api_url: str, headers: dict, url: str, types: list[str]) -> str:
    created = http.post(
        f"{api_url}/v1/webhooks",
        headers=headers,
        json={"url": url, "eventTypes": types, "description": "e2e"},
    )
    assert created.status_code == 201, created.text
    return created.json()["data"]["endpoint"]["id"]


def test_a_recording_becomes_a_video_listed_playable_and_announced_once_per_fact(
    http: httpx.Client, api_url: str, demo_key: str, demo_org_id: str, livekit_admin, receivers
) -> None:
    headers = {KEY: demo_key}
    endpoints = [
        _endpoint(http, api_url, headers, receivers.url("both"), ["recording.ready", "video.ready"]),
        _endpoint(http, api_url, headers, receivers.url("legacy"), ["recording.ready"]),
    ]
    try:
        created = _create(http, api_url, demo_key, title="E2E recorded class").json()["data"]
        room_id = created["room"]["roomId"]
        path = f"/admin/rooms/{demo_org_id}.{room_id}/participants"
        livekit_admin("POST", path, {"token": created["token"]}, token=created["token"])
        status = _until(
            lambda: http.get(f"{api_url}/v1/room/{room_id}/status", headers=headers).json()["data"],
            lambda s: s["hasTeacher"],
            timeout=60,
        )
        assert status["hasTeacher"]
        started = http.post(f"{api_url}/v1/room/{room_id}/recording/start", headers=headers, json={})
        assert started.status_code == 200, started.text
        egress_id = started.json()["data"]["egressId"]
        stopped = http.post(f"{api_url}/v1/room/{room_id}/recording/stop", headers=headers, json={})
        assert stopped.status_code == 200, stopped.text

        # The egress ends, its MP4 is transcoded: the room's recording list shows the playable video.
        def recording() -> dict:
            listed = http.get(f"{api_url}/v1/room/{room_id}/recording/list", headers=headers).json()["data"]
            return listed["recordings"][0] if listed["recordings"] else {}

        rec = _until(recording, lambda r: r.get("videoStatus") in ("completed", "failed"), timeout=300)
        assert rec["egressId"] == egress_id and rec["status"] == "EGRESS_COMPLETE", rec
        assert rec["videoStatus"] == "completed" and rec["videoId"].startswith("rec_"), rec
        video_id = rec["videoId"]
        assert f"/v1/cdn/stream/{video_id}/master.m3u8?token=" in rec["playbackUrl"]
        probe = subprocess.run(
            [
                "ffprobe",
                "-v",
                "error",
                "-show_entries",
                "stream=codec_type",
                "-of",
                "csv=p=0",
                rec["playbackUrl"],
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert probe.returncode == 0 and "video" in probe.stdout.split(), probe.stderr
        link = http.get(f"{api_url}/v1/room/{room_id}/recording/{egress_id}/download", headers=headers)
        assert link.status_code == 200 and link.json()["data"]["videoId"] == video_id

        # The videos API lists it as a recording of its room, beside (not among) the uploads.
        videos = http.get(f"{api_url}/v1/cdn/videos", headers=headers, params={"kind": "recording"})
        (listed,) = [v for v in videos.json()["data"]["videos"] if v["videoId"] == video_id]
        assert (
            listed["kind"] == "recording" and listed["roomId"] == room_id and listed["egressId"] == egress_id
        )
        uploads = http.get(f"{api_url}/v1/cdn/videos", headers=headers, params={"kind": "upload"})
        assert video_id not in {v["videoId"] for v in uploads.json()["data"]["videos"]}

        # Each fact once: the MP4's recording.ready and the HLS's video.ready, to both endpoints.
        def facts() -> dict[str, Counter]:
            seen: dict[str, Counter] = {"both": Counter(), "legacy": Counter()}
            for got in receivers.received:
                event = json.loads(got.body)
                if event["data"].get("videoId") == video_id:
                    seen[got.path.strip("/")][event["type"]] += 1
            return seen

        expected = Counter({"recording.ready": 1, "video.ready": 1})
        seen = _until(facts, lambda s: s["both"] == expected and s["legacy"] == expected, timeout=120)
        assert seen == {"both": expected, "legacy": expected}, seen
        time.sleep(3)  # anything delivered twice would have arrived by now (deliveries are immediate)
        assert facts() == seen
        by_type = {json.loads(g.body)["type"]: json.loads(g.body)["data"] for g in receivers.to("both")}
        assert (
            by_type["recording.ready"]["egressId"] == egress_id
            and by_type["recording.ready"]["roomId"] == room_id
        )
        assert by_type["video.ready"]["kind"] == "recording" and by_type["video.ready"]["roomId"] == room_id
    finally:
        for endpoint_id in endpoints:
            http.delete(f"{api_url}/v1/webhooks/{endpoint_id}", headers=headers)
