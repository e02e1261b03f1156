"""The LiveKit stand-in speaks LiveKit's wire protocol: Twirp with protobuf or JSON, bearer JWTs
checked the way LiveKit checks them, webhooks that livekit-api's WebhookReceiver accepts, and
rooms that close themselves after their empty timeout."""

from __future__ import annotations

import json
import secrets
import urllib.error
import urllib.request

import pytest
from livekit.api import AccessToken, TokenVerifier, VideoGrants, WebhookReceiver
from livekit_support import LiveKit

pytestmark = pytest.mark.timeout(60)
pytest_plugins = ("livekit_support",)


def twirp(url: str, method: str, body: dict, token: str, service: str = "RoomService") -> tuple[int, dict]:
    request = urllib.request.Request(  # noqa: S310 - the local stand-in
        f"{url}/twirp/livekit.{service}/{method}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def token(lk: LiveKit, grants: VideoGrants, secret: str | None = None) -> str:
    return AccessToken(lk.api_key, secret or lk.api_secret).with_grants(grants).to_jwt()


def test_json_twirp_with_the_right_grant(livekit: LiveKit):
    status, room = twirp(
        livekit.url,
        "CreateRoom",
        {"name": "a", "emptyTimeout": 60, "maxParticipants": 5},
        token(livekit, VideoGrants(room_create=True)),
    )
    assert status == 200 and room["sid"].startswith("RM_") and room["maxParticipants"] == 5
    status, again = twirp(
        livekit.url, "CreateRoom", {"name": "a"}, token(livekit, VideoGrants(room_create=True))
    )
    assert status == 200 and again["sid"] == room["sid"]  # idempotent, as LiveKit is


def test_tokens_are_checked_as_livekit_checks_them(livekit: LiveKit):
    status, body = twirp(
        livekit.url,
        "CreateRoom",
        {"name": "a"},
        token(livekit, VideoGrants(room_create=True), secret=secrets.token_urlsafe(32)),
    )
    assert status == 401 and body["code"] == "unauthenticated"
    status, body = twirp(
        livekit.url, "CreateRoom", {"name": "a"}, token(livekit, VideoGrants(room_list=True))
    )
    assert status == 403 and body["code"] == "permission_denied"
    twirp(livekit.url, "CreateRoom", {"name": "b"}, token(livekit, VideoGrants(room_create=True)))
    status, body = twirp(
        livekit.url,
        "ListParticipants",
        {"room": "b"},
        token(livekit, VideoGrants(room_admin=True, room="other")),
    )
    assert status == 403
    status, body = twirp(
        livekit.url,
        "StartRoomCompositeEgress",
        {"roomName": "b"},
        token(livekit, VideoGrants(room_admin=True)),
        service="Egress",
    )
    assert status == 403  # egress needs roomRecord
    status, body = twirp(
        livekit.url, "ListParticipants", {"room": "nope"}, token(livekit, VideoGrants(room_admin=True))
    )
    assert status == 404 and body["code"] == "not_found"


def test_webhooks_verify_with_livekit_api_and_empty_rooms_close(livekit: LiveKit):
    twirp(
        livekit.url,
        "CreateRoom",
        {"name": "brief", "emptyTimeout": 1},
        token(livekit, VideoGrants(room_create=True)),
    )
    started, finished = livekit.wait_for("room_started", "room_finished", timeout=15)
    receiver = WebhookReceiver(TokenVerifier(livekit.api_key, livekit.api_secret))
    event = receiver.receive(finished.body, finished.headers["Authorization"])
    assert event.event == "room_finished" and event.room.name == "brief" and event.id.startswith("EV_")
    assert finished.headers["Content-Type"] == "application/webhook+json"
    with pytest.raises(Exception, match="hash mismatch"):
        receiver.receive(started.body.replace("brief", "other"), started.headers["Authorization"])


def test_rtc_validate_answers_as_livekit_does(livekit: LiveKit):
    good = (
        AccessToken(livekit.api_key, livekit.api_secret)
        .with_identity("u")
        .with_grants(VideoGrants(room_join=True, room="r"))
        .to_jwt()
    )
    bad = (
        AccessToken(livekit.api_key, secrets.token_urlsafe(32))
        .with_identity("u")
        .with_grants(VideoGrants(room_join=True, room="r"))
        .to_jwt()
    )
    for path in ("/rtc/validate", "/rtc/v1/validate"):
        with urllib.request.urlopen(f"{livekit.url}{path}?access_token={good}", timeout=10) as reply:  # noqa: S310
            assert reply.status == 200 and reply.read() == b"success"
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{livekit.url}{path}?access_token={bad}", timeout=10)  # noqa: S310
        assert refused.value.code == 401
