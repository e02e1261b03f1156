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
from livekit_support import LiveKit, twirp

pytestmark = pytest.mark.timeout(60)
pytest_plugins = ("livekit_support",)


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
        livekit.url,
        "ListParticipants",
        {"room": "nope"},
        token(livekit, VideoGrants(room_admin=True, room="nope")),
    )
    assert status == 404 and body["code"] == "not_found"


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("ListParticipants", {"room": "b"}),
        ("GetParticipant", {"room": "b", "identity": "u"}),
        ("RemoveParticipant", {"room": "b", "identity": "u"}),
        ("MutePublishedTrack", {"room": "b", "identity": "u", "trackSid": "TR_x", "muted": True}),
        ("UpdateParticipant", {"room": "b", "identity": "u", "metadata": "{}"}),
        ("UpdateRoomMetadata", {"room": "b", "metadata": "{}"}),
    ],
)
def test_room_admin_acts_only_in_the_room_its_token_names(livekit: LiveKit, method: str, body: dict):
    twirp(livekit.url, "CreateRoom", {"name": "b"}, token(livekit, VideoGrants(room_create=True)))
    for grants in (
        VideoGrants(room_admin=True),
        VideoGrants(room_admin=True, room="a"),
        VideoGrants(room="b"),
    ):
        status, answer = twirp(livekit.url, method, body, token(livekit, grants))
        assert (status, answer["code"]) == (403, "permission_denied"), (grants, answer)
    status, answer = twirp(livekit.url, method, body, token(livekit, VideoGrants(room_admin=True, room="b")))
    assert status in (200, 404), answer  # allowed: the participant or track may not exist


@pytest.mark.parametrize(
    ("method", "body"),
    [
        ("ListEgress", {}),
        ("StopEgress", {"egressId": "EG_x"}),
        ("StartRoomCompositeEgress", {"roomName": "b"}),
    ],
)
def test_every_egress_method_needs_room_record(livekit: LiveKit, method: str, body: dict):
    twirp(livekit.url, "CreateRoom", {"name": "b"}, token(livekit, VideoGrants(room_create=True)))
    join_token = (
        AccessToken(livekit.api_key, livekit.api_secret)
        .with_identity("t")
        .with_grants(VideoGrants(room_join=True, room="b", room_admin=True, can_publish=True))
        .to_jwt()
    )
    status, answer = twirp(livekit.url, method, body, join_token, service="Egress")
    assert (status, answer["code"]) == (403, "permission_denied")
    status, _ = twirp(
        livekit.url, method, body, token(livekit, VideoGrants(room_record=True)), service="Egress"
    )
    assert status != 403


def _joined(livekit: LiveKit, room: str, identity: str, **grants) -> str:
    twirp(livekit.url, "CreateRoom", {"name": room}, token(livekit, VideoGrants(room_create=True)))
    joined = (
        AccessToken(livekit.api_key, livekit.api_secret)
        .with_identity(identity)
        .with_grants(VideoGrants(room_join=True, room=room, **grants))
        .to_jwt()
    )
    livekit.join(room, joined)
    return joined


def _admin_status(livekit: LiveKit, method: str, path: str, body: dict | None, bearer: str) -> int:
    try:
        livekit.admin(method, path, body, token=bearer)
    except urllib.error.HTTPError as exc:
        return exc.code
    return 200


def test_admin_routes_are_scoped_like_the_acts_they_simulate(livekit: LiveKit):
    student_a = _joined(livekit, "a", "s-a")
    teacher_a = _joined(livekit, "a", "t-a", room_admin=True)
    _joined(livekit, "b", "s-b")
    # A join token of room a cannot make anyone leave room b, nor another participant leave room a.
    assert _admin_status(livekit, "DELETE", "/admin/rooms/b/participants/s-b", None, student_a) == 403
    assert _admin_status(livekit, "DELETE", "/admin/rooms/a/participants/t-a", None, student_a) == 403
    assert _admin_status(livekit, "DELETE", "/admin/rooms/b/participants/s-b", None, teacher_a) == 403
    # ... nor join anyone to room b, nor list every room, nor finish a recording.
    assert _admin_status(livekit, "POST", "/admin/rooms/b/participants", {"identity": "x"}, teacher_a) == 403
    assert _admin_status(livekit, "POST", "/admin/rooms/a/participants", {"identity": "x"}, student_a) == 403
    assert _admin_status(livekit, "GET", "/admin/state", None, teacher_a) == 403
    assert _admin_status(livekit, "POST", "/admin/egress/EG_x/complete", None, teacher_a) == 403
    rooms = {r["name"]: {p["identity"] for p in r["participants"]} for r in livekit.stand_in.state()["rooms"]}
    assert rooms == {"a": {"s-a", "t-a"}, "b": {"s-b"}}
    # What each may do: leave as itself, remove in its own room as admin, list with roomList.
    assert _admin_status(livekit, "DELETE", "/admin/rooms/a/participants/s-a", None, student_a) == 200
    assert _admin_status(livekit, "DELETE", "/admin/rooms/a/participants/t-a", None, teacher_a) == 200
    everything = token(livekit, VideoGrants(room_list=True))
    assert {r["name"] for r in livekit.admin("GET", "/admin/state", token=everything)["rooms"]} == {"a", "b"}


def test_a_client_rewrites_its_own_metadata_only_with_can_update_own_metadata(livekit: LiveKit):
    allowed = _joined(livekit, "c", "u-1", can_update_own_metadata=True)
    refused = _joined(livekit, "c", "u-2")
    change = {"metadata": json.dumps({"role": "TEACHER"}), "name": "<b>Head</b>"}
    path = "/admin/rooms/c/participants/{}/metadata"
    assert _admin_status(livekit, "POST", path.format("u-2"), change, refused) == 403
    assert _admin_status(livekit, "POST", path.format("u-2"), change, allowed) == 403  # not its own
    assert _admin_status(livekit, "POST", path.format("u-1"), change, allowed) == 200
    people = {p["identity"]: p for p in livekit.stand_in.state()["rooms"][0]["participants"]}
    assert people["u-1"]["name"] == "<b>Head</b>" and "metadata" not in people["u-2"]


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
