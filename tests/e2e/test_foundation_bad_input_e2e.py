"""Bad input through the deployed stack (API Gateway on LocalStack, its authorizer and gateway
responses, the functions): a 4xx error envelope with X-Request-Id on every route, never a 5xx."""

from __future__ import annotations

import httpx
import pytest
from bad_input import bad_bodies, check_error, operations, request_fields

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def served(api_url: str) -> dict:
    with httpx.Client(timeout=30, trust_env=False) as client:
        return client.get(f"{api_url}/v1/openapi.json").json()


@pytest.fixture(scope="module")
def owner_token(e2e_stack: dict[str, str], api_url: str) -> str:
    """The demo org owner's dashboard token: every org route admits it (the org key may not manage
    keys, and callers are admitted before their input is read)."""
    with httpx.Client(timeout=30, trust_env=False) as client:
        login = client.post(
            f"{api_url}/v1/auth/login",
            json={"email": e2e_stack["DEMO_OWNER_EMAIL"], "password": e2e_stack["DEMO_OWNER_PASSWORD"]},
        )
    assert login.status_code == 200, login.text
    return login.json()["data"]["token"]


def test_every_bad_body_on_every_route_is_a_4xx_envelope_with_the_request_id(
    served, api_url, owner_token, dispatch_secret, http
):
    checked = 0
    owner = {"Authorization": f"Bearer {owner_token}"}
    for op in operations(served):
        if not op.has_body:
            continue
        headers = {"X-Dispatch-Secret": dispatch_secret} if op.internal else owner
        for case in bad_bodies(request_fields(served, op)):
            reply = http.request(
                op.method.upper(),
                api_url + op.url_path(),
                content=case.body,
                headers=headers | {"Content-Type": case.content_type},
            )
            check_error(reply.status_code, reply.headers, reply.json())
            checked += 1
            if op.public and reply.status_code == 401:
                continue  # the classroom routes check their own credential (a join token) first
            assert (reply.status_code, reply.json()["error"]) == (case.status, case.error), (op.id, case.name)
    assert checked >= 25 * 5


def test_gateway_answers_carry_the_request_id(api_url, http):
    unknown = http.get(f"{api_url}/v1/no-such-route")
    check_error(unknown.status_code, unknown.headers, unknown.json())
    assert unknown.status_code == 404 and unknown.json()["error"] == "NOT_FOUND"
    anonymous = http.get(f"{api_url}/v1/billing/balance")
    check_error(anonymous.status_code, anonymous.headers, anonymous.json())
    assert anonymous.status_code == 401 and anonymous.json()["error"] == "UNAUTHORIZED"
    forged = http.get(f"{api_url}/v1/billing/balance", headers={"VF-ORG-ID": "vfk_00000000_" + "x" * 43})
    check_error(forged.status_code, forged.headers, forged.json())
    assert anonymous.headers["X-Request-Id"] != forged.headers["X-Request-Id"]


def test_a_counted_request_that_fails_carries_the_rate_limit_headers(api_url, demo_key, http):
    reply = http.get(f"{api_url}/v1/cdn/videos/vid_0000000000000000000000", headers={"VF-ORG-ID": demo_key})
    check_error(reply.status_code, reply.headers, reply.json())
    assert reply.status_code == 404
    assert {"ratelimit", "ratelimit-policy", "x-ratelimit-remaining"} <= set(reply.headers)


def test_the_stream_routes_answer_alike_for_real_unknown_and_malformed_ids(api_url, demo_key, http):
    created = http.post(
        f"{api_url}/v1/cdn/videos",
        headers={"VF-ORG-ID": demo_key},
        json={"title": "probe", "sizeBytes": 1000, "contentType": "video/mp4"},
    )
    assert created.status_code == 201, created.text
    real = created.json()["data"]["video"]["videoId"]
    answers = set()
    for video_id in (real, "vid_0000000000000000000000", "x"):
        for query in ("token=a.%C3%A9", "token=a.b", "token=%FF", ""):
            for tail in ("master.m3u8", "360p/index.m3u8"):
                reply = http.get(f"{api_url}/v1/cdn/stream/{video_id}/{tail}?{query}")
                check_error(reply.status_code, reply.headers, reply.json())
                answers.add((reply.status_code, reply.json()["message"]))
    assert answers == {(403, "The playback token is not valid.")}
