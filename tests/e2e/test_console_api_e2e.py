"""The Console's API on the deployed stack, as the Console's browser uses it (its `Origin` on every
request): the preflight, the demo owner's sign-in, a team member created, their role changed and
their sessions following it, signing out; the demo viewer reading but changing nothing; and a video
uploaded from the browser in parts (each part PUT with the Origin, the ETag read from the answer),
joined, and transcoded."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest
from media_support import make_video

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]

PASSWORD = "a member's long password"


@pytest.fixture(scope="module")
def origin(e2e_stack: dict[str, str]) -> str:
    """Where `make up` publishes the Console: the page bucket's origin, LocalStack's S3 here."""
    return e2e_stack["AWS_ENDPOINT_URL"].rstrip("/")


def _sign_in(http: httpx.Client, api_url: str, origin: str, email: str, password: str) -> dict[str, str]:
    login = http.post(
        f"{api_url}/v1/auth/login", json={"email": email, "password": password}, headers={"Origin": origin}
    )
    assert login.status_code == 200, login.text
    assert login.headers["access-control-allow-origin"] == origin
    return {"Authorization": f"Bearer {login.json()['data']['token']}", "Origin": origin}


def test_the_api_answers_the_consoles_preflight_and_no_other_origin(http, api_url, origin):
    for path, method in (
        ("/v1/team/users", "POST"),
        ("/v1/auth/login", "POST"),
        ("/v1/billing/usage", "GET"),
    ):
        preflight = http.options(
            f"{api_url}{path}",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        assert preflight.status_code == 200, (path, preflight.status_code, preflight.text)
        assert preflight.headers["access-control-allow-origin"] == origin
        assert method in preflight.headers["access-control-allow-methods"]
        assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    answer = http.get(f"{api_url}/v1/health", headers={"Origin": "https://elsewhere.example"})
    assert answer.status_code == 200 and "access-control-allow-origin" not in answer.headers


def test_sign_in_create_a_member_change_their_role_and_sign_out(http, api_url, origin, e2e_stack):
    owner = _sign_in(http, api_url, origin, e2e_stack["DEMO_OWNER_EMAIL"], e2e_stack["DEMO_OWNER_PASSWORD"])
    me = http.get(f"{api_url}/v1/auth/whoami", headers=owner).json()["data"]
    assert (me["email"], me["role"], me["via"]) == (e2e_stack["DEMO_OWNER_EMAIL"], "owner", "jwt")
    assert me["userId"] and me["expiresAt"]

    email = f"member-{uuid.uuid4().hex[:8]}@console.example"
    body = {"email": email, "name": "Member One", "role": "member", "password": PASSWORD}
    created = http.post(f"{api_url}/v1/team/users", headers=owner, json=body)
    assert created.status_code == 201, created.text
    assert created.headers["access-control-allow-origin"] == origin
    member_id = created.json()["data"]["user"]["userId"]
    again = http.post(f"{api_url}/v1/team/users", headers=owner, json=body)
    assert again.status_code == 409 and again.json()["error"] == "CONFLICT"

    member = _sign_in(http, api_url, origin, email, PASSWORD)
    assert http.get(f"{api_url}/v1/keys", headers=member).status_code == 403  # no keys for members
    listed = http.get(f"{api_url}/v1/team/users", headers=member).json()["data"]["users"]
    assert {u["email"] for u in listed} >= {email, e2e_stack["DEMO_OWNER_EMAIL"]}

    changed = http.patch(f"{api_url}/v1/team/users/{member_id}", headers=owner, json={"role": "viewer"})
    assert changed.status_code == 200 and changed.json()["data"]["user"]["role"] == "viewer"
    video = {"title": "x", "sizeBytes": 1000, "contentType": "video/mp4"}
    refused = http.post(f"{api_url}/v1/cdn/videos", headers=member, json=video)
    assert refused.status_code == 403 and refused.headers["access-control-allow-origin"] == origin
    own = http.patch(f"{api_url}/v1/team/users/{me['userId']}", headers=owner, json={"role": "admin"})
    assert own.status_code == 403

    removed = http.delete(f"{api_url}/v1/team/users/{member_id}", headers=owner)
    assert removed.status_code == 200 and removed.json()["data"] == {"deleted": True}
    assert http.get(f"{api_url}/v1/auth/whoami", headers=member).status_code == 401

    out = http.post(f"{api_url}/v1/auth/logout", headers=owner)
    assert out.status_code == 200 and out.json()["data"] == {"loggedOut": True}
    gone = http.get(f"{api_url}/v1/auth/whoami", headers=owner)
    assert gone.status_code == 401 and gone.json()["error"] == "UNAUTHORIZED"


def test_the_demo_viewer_reads_and_changes_nothing(http, api_url, origin, e2e_stack):
    viewer = _sign_in(
        http, api_url, origin, e2e_stack["DEMO_VIEWER_EMAIL"], e2e_stack["DEMO_VIEWER_PASSWORD"]
    )
    for path in ("/v1/team/users", "/v1/billing/usage?groupBy=day&by=service", "/v1/webhooks/event-types"):
        assert http.get(f"{api_url}{path}", headers=viewer).status_code == 200, path
    for method, path, body in (
        (
            "POST",
            "/v1/team/users",
            {"email": "v@x.example", "name": "V", "role": "viewer", "password": PASSWORD},
        ),
        ("PUT", "/v1/ai-tutor/settings", {"mode": "hints"}),
        ("PUT", "/v1/billing/limits", {"lowCredits": 5}),
    ):
        reply = http.request(method, f"{api_url}{path}", headers=viewer, json=body)
        assert reply.status_code == 403 and reply.json()["error"] == "FORBIDDEN", (path, reply.text)


def test_a_browser_uploads_a_video_in_parts_and_it_transcodes(http, api_url, origin, e2e_stack, tmp_path):
    owner = _sign_in(http, api_url, origin, e2e_stack["DEMO_OWNER_EMAIL"], e2e_stack["DEMO_OWNER_PASSWORD"])
    clip = make_video(tmp_path / "lesson.mp4", width=320, height=180, seconds=2)
    body = {
        "title": "Browser upload",
        "sizeBytes": clip.stat().st_size,
        "contentType": "video/mp4",
        "multipart": True,
    }
    created = http.post(f"{api_url}/v1/cdn/videos", headers=owner, json=body)
    assert created.status_code == 201, created.text
    upload, video_id = created.json()["data"]["upload"], created.json()["data"]["video"]["videoId"]
    assert upload["type"] == "multipart" and upload["uploadId"] and upload["partSize"] >= 8 * 1024**2

    data, parts = clip.read_bytes(), []
    for part in upload["parts"]:
        start = (part["partNumber"] - 1) * upload["partSize"]
        # what a browser sends: its Origin; S3 answers with CORS headers so the page may read the ETag
        put = http.put(
            part["url"], content=data[start : start + upload["partSize"]], headers={"Origin": origin}
        )
        assert put.status_code == 200, put.text
        assert put.headers.get("access-control-allow-origin") in (origin, "*"), dict(put.headers)
        assert "etag" in put.headers.get("access-control-expose-headers", "").lower(), dict(put.headers)
        parts.append({"partNumber": part["partNumber"], "etag": put.headers["etag"]})

    done = http.post(
        f"{api_url}/v1/cdn/videos/{video_id}/upload/complete", headers=owner, json={"parts": parts}
    )
    assert done.status_code == 200, done.text
    deadline, status = time.monotonic() + 300, {}
    while time.monotonic() < deadline:
        status = http.get(f"{api_url}/v1/cdn/videos/{video_id}/status", headers=owner).json()["data"]
        if status["status"] in ("completed", "failed"):
            break
        time.sleep(1)
    assert status.get("status") == "completed", status
