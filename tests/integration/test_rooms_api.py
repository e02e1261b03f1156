"""The rooms API in-process against the real MongoDB-wire server, Redis and the LiveKit stand-in."""

from __future__ import annotations

import json

import pytest
from livekit.api import TokenVerifier
from livekit_support import LIVE_UI, LiveKit, fund, only_room_scoped_grants, rooms_event
from rooms.handler import handler
from support import api_event, call

pytest_plugins = ("livekit_support",)

CREATE = "rooms/create.json"


def create(org, room_id="physics-101", **changes):
    body = {
        "roomId": room_id,
        "title": "Physics 101",
        "participant": {"uid": "t-1", "name": "Ada", "role": "TEACHER"},
    }
    body |= changes
    return api_event(CREATE, headers=org.headers, body=body)


def room_event(name, org, room_id, body=None, **params):
    return rooms_event(name, org.headers, body=body, room_id=room_id, **params)


@pytest.fixture
def funded(org):
    fund(org.id)
    return org


def test_create_returns_token_iframe_url_and_livekit_sid(funded, livekit: LiveKit, lambda_context):
    reply = call(
        handler,
        create(
            funded,
            customization={"allowScreenShare": False, "theme": "dark"},
            settings={"maxParticipants": 40, "emptyTimeout": 120},
        ),
        lambda_context,
    )
    assert reply.status == 200, reply.body
    data = reply.data
    assert data["room"]["roomId"] == "physics-101" and data["room"]["sid"].startswith("RM_")
    assert data["iframeUrl"] == f"{LIVE_UI}/iframe/live?token={data['token']}"
    claims = TokenVerifier(livekit.api_key, livekit.api_secret).verify(data["token"])
    assert claims.identity == "t-1" and claims.name == "Ada"
    assert claims.video.room == f"{funded.id}.physics-101" and claims.video.room_join
    assert claims.video.room_admin and only_room_scoped_grants(claims)
    assert "screen_share" not in claims.video.can_publish_sources  # customization took the right away
    meta = json.loads(claims.metadata)
    assert meta["role"] == "TEACHER" and meta["customization"]["theme"] == "dark"
    room = livekit.stand_in.state()["rooms"][0]
    assert (
        room["sid"] == data["room"]["sid"] and room["maxParticipants"] == 40 and room["emptyTimeout"] == 120
    )


def test_create_uses_documented_defaults(funded, livekit: LiveKit, lambda_context):
    call(handler, create(funded), lambda_context)
    room = livekit.stand_in.state()["rooms"][0]
    assert room["maxParticipants"] == 1000 and room["emptyTimeout"] == 300


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"roomId": "has space"}, "roomId"),
        ({"roomId": "dot.ted"}, "roomId"),
        ({"roomId": "x" * 101}, "roomId"),
        ({"title": "t" * 101}, "title"),
        ({"participant": {"uid": "u", "name": "n" * 101, "role": "TEACHER"}}, "participant.name"),
        ({"participant": {"uid": "u", "name": "n", "role": "PRINCIPAL"}}, "participant.role"),
        ({"settings": {"maxParticipants": 5001}}, "settings.maxParticipants"),
        ({"settings": {"emptyTimeout": 1801}}, "settings.emptyTimeout"),
        ({"customization": {"theme": "neon"}}, "customization.theme"),
    ],
)
def test_create_rejects_bad_input_naming_the_field(funded, livekit: LiveKit, lambda_context, change, field):
    reply = call(handler, create(funded, **change), lambda_context)
    assert reply.status == 400 and reply.body["error"] == "VALIDATION_ERROR"
    assert f"'{field}'" in reply.body["message"]
    assert livekit.stand_in.state()["rooms"] == []  # nothing was created anywhere


def test_reused_room_id_is_400_even_after_destroy(funded, livekit: LiveKit, lambda_context):
    assert call(handler, create(funded), lambda_context).status == 200
    again = call(handler, create(funded), lambda_context)
    assert again.status == 400 and "'roomId'" in again.body["message"]
    assert call(handler, room_event("destroy", funded, "physics-101"), lambda_context).status == 200
    after = call(handler, create(funded), lambda_context)
    assert after.status == 400 and after.body["error"] == "VALIDATION_ERROR"


def test_same_room_id_in_another_org_is_independent(funded, other_org, livekit: LiveKit, lambda_context):
    fund(other_org.id)
    first = call(handler, create(funded), lambda_context).data
    second = call(handler, create(other_org), lambda_context).data
    assert first["room"]["sid"] != second["room"]["sid"]


def test_create_without_credits_is_402_with_the_documented_message(org, livekit: LiveKit, lambda_context):
    fund(org.id, 99)
    reply = call(handler, create(org), lambda_context)
    assert reply.status == 402
    assert reply.body == {
        "success": False,
        "message": "Insufficient credits. Minimum 100 required to start a class.",
        "error": "INSUFFICIENT_CREDITS",
    }
    assert livekit.stand_in.state()["rooms"] == []


def test_livekit_unreachable_is_503_and_nothing_is_half_created(
    funded, livekit: LiveKit, lambda_context, monkeypatch
):
    from rooms import lk
    from rooms.config import live_settings
    from servers import free_port

    monkeypatch.setenv("LIVEKIT_URL", f"http://127.0.0.1:{free_port()}")
    live_settings.cache_clear()
    lk.reset()
    reply = call(handler, create(funded), lambda_context)
    assert reply.status == 503 and reply.body["error"] == "SERVICE_UNAVAILABLE"
    status = call(handler, room_event("status", funded, "physics-101"), lambda_context).data
    assert status["exists"] is False
    # LiveKit back: the same roomId is still free, since nothing was written.
    monkeypatch.setenv("LIVEKIT_URL", livekit.url)
    live_settings.cache_clear()
    assert call(handler, create(funded), lambda_context).status == 200


def test_join_gives_a_student_token_with_student_grants(funded, livekit: LiveKit, lambda_context):
    call(handler, create(funded, customization={"needChat": False}), lambda_context)
    body = {"participant": {"uid": "s-1", "name": "Sam"}, "customization": {"allowHandRaise": True}}
    reply = call(handler, room_event("join", funded, "physics-101", body), lambda_context)
    assert reply.status == 200, reply.body
    assert reply.data["iframeUrl"].startswith(f"{LIVE_UI}/iframe/live?token=")
    claims = TokenVerifier(livekit.api_key, livekit.api_secret).verify(reply.data["token"])
    assert claims.identity == "s-1" and not claims.video.can_publish and claims.video.can_subscribe
    assert claims.video.can_publish_data and not claims.video.room_admin and only_room_scoped_grants(claims)
    meta = json.loads(claims.metadata)
    assert meta["role"] == "STUDENT" and meta["customization"]["needChat"] is False


def test_join_unknown_room_is_404_and_another_orgs_room_is_404(
    funded, other_org, livekit: LiveKit, lambda_context
):
    fund(other_org.id)
    call(handler, create(other_org, room_id="secret-class", title="Other org's secret"), lambda_context)
    body = {"participant": {"uid": "s-1", "name": "Sam", "role": "STUDENT"}}
    for room_id in ("missing", "secret-class"):
        reply = call(handler, room_event("join", funded, room_id, body), lambda_context)
        assert reply.status == 404 and reply.body["error"] == "NOT_FOUND"
        assert "secret" not in json.dumps(reply.body).lower().replace("secret-class", "")


def test_join_with_unknown_role_is_400(funded, livekit: LiveKit, lambda_context):
    call(handler, create(funded), lambda_context)
    body = {"participant": {"uid": "s-1", "name": "Sam", "role": "GUEST"}}
    reply = call(handler, room_event("join", funded, "physics-101", body), lambda_context)
    assert reply.status == 400 and "'participant.role'" in reply.body["message"]


def test_joining_a_created_class_needs_no_minimum_but_creating_one_does(
    org, livekit: LiveKit, lambda_context
):
    from verriflo import ledger

    fund(org.id, 150)
    call(handler, create(org), lambda_context)
    ledger.record_usage(ledger.UsageEvent(entry_id="spent", org_id=org.id, service="live", credits=100))
    body = {"participant": {"uid": "s-1", "name": "Sam", "role": "STUDENT"}}
    assert call(handler, room_event("join", org, "physics-101", body), lambda_context).status == 200
    refused = call(handler, create(org, room_id="chemistry"), lambda_context)
    assert (
        refused.status == 402
        and refused.body["message"] == "Insufficient credits. Minimum 100 required to start a class."
    )


def _start_class(org, livekit: LiveKit, lambda_context, room_id="physics-101"):
    """Create the room and connect its teacher (LiveKit's webhooks mark the class started)."""
    created = call(handler, create(org, room_id=room_id), lambda_context).data
    livekit.join(f"{org.id}.{room_id}", created["token"])
    livekit.pump(handler, lambda_context, "room_started", "participant_joined")
    return created


def test_late_joiner_of_a_class_in_progress_is_admitted_below_the_minimum(
    org, livekit: LiveKit, lambda_context
):
    from verriflo import ledger

    fund(org.id, 150)
    _start_class(org, livekit, lambda_context)
    # live usage took the balance below zero: starting is refused, joining the running class is not
    ledger.record_usage(ledger.UsageEvent(entry_id="spent", org_id=org.id, service="live", credits=200))
    assert call(handler, create(org, room_id="next-class"), lambda_context).status == 402
    for uid, role in (("s-late", "STUDENT"), ("m-late", "MODERATOR")):
        body = {"participant": {"uid": uid, "name": "Late", "role": role}}
        reply = call(handler, room_event("join", org, "physics-101", body), lambda_context)
        assert reply.status == 200, reply.body
        assert reply.data["token"]


def test_late_joiner_is_refused_once_the_room_or_student_cap_is_used_up(
    org, livekit: LiveKit, lambda_context
):
    from verriflo import ledger

    fund(org.id, 1000)
    _start_class(org, livekit, lambda_context)
    body = {"participant": {"uid": "s-1", "name": "Sam"}}
    ledger.record_usage(
        ledger.UsageEvent(
            entry_id="s-1-live",
            org_id=org.id,
            service="live",
            credits=30,
            room_id="elsewhere",
            student_id="s-1",
        )
    )
    ledger.configure(org.id, caps=ledger.Caps(student_monthly_milli=30_000))
    refused = call(handler, room_event("join", org, "physics-101", body), lambda_context)
    assert refused.status == 402 and "student's monthly cap" in refused.body["message"]
    other = {"participant": {"uid": "s-2", "name": "Sue"}}
    assert call(handler, room_event("join", org, "physics-101", other), lambda_context).status == 200
    ledger.record_usage(
        ledger.UsageEvent(
            entry_id="room-live", org_id=org.id, service="live", credits=50, room_id="physics-101"
        )
    )
    ledger.configure(org.id, caps=ledger.Caps(room_milli=50_000))
    capped = call(handler, room_event("join", org, "physics-101", other), lambda_context)
    assert capped.status == 402 and "room's cap" in capped.body["message"]


def test_status_reflects_participants_from_webhooks(funded, livekit: LiveKit, lambda_context):
    created = call(handler, create(funded), lambda_context).data
    name = f"{funded.id}.physics-101"
    status = call(handler, room_event("status", funded, "physics-101"), lambda_context).data
    assert (
        status["exists"]
        and status["isActive"]
        and status["participantCount"] == 0
        and not status["hasTeacher"]
    )
    assert status["title"] == "Physics 101" and status["createdAt"] and not status["isRecording"]
    livekit.join(name, created["token"])
    livekit.pump(handler, lambda_context, "room_started", "participant_joined")
    status = call(handler, room_event("status", funded, "physics-101"), lambda_context).data
    assert status["participantCount"] == 1 and status["hasTeacher"] and status["startedAt"]


def test_status_of_missing_or_foreign_room_is_200_exists_false(
    funded, other_org, livekit: LiveKit, lambda_context
):
    fund(other_org.id)
    call(handler, create(other_org, room_id="theirs", title="Their title"), lambda_context)
    for room_id in ("nope", "theirs"):
        reply = call(handler, room_event("status", funded, room_id), lambda_context)
        assert reply.status == 200
        assert reply.data == {
            "exists": False,
            "isActive": False,
            "roomId": room_id,
            "title": None,
            "participantCount": 0,
            "hasTeacher": False,
            "isRecording": False,
            "createdAt": None,
            "startedAt": None,
        }


def test_destroy_disconnects_everyone_then_410_and_404(funded, other_org, livekit: LiveKit, lambda_context):
    fund(other_org.id)
    created = call(handler, create(funded), lambda_context).data
    name = f"{funded.id}.physics-101"
    livekit.join(name, created["token"])
    # another org cannot end it
    assert call(handler, room_event("destroy", other_org, "physics-101"), lambda_context).status == 404
    reply = call(handler, room_event("destroy", funded, "physics-101"), lambda_context)
    assert reply.status == 200
    assert reply.data["roomId"] == "physics-101" and reply.data["participantsDisconnected"] == 1
    assert reply.data["wasRecording"] is False and reply.data["endedAt"]
    assert livekit.stand_in.state()["rooms"] == []
    twice = call(handler, room_event("destroy", funded, "physics-101"), lambda_context)
    assert twice.status == 410 and twice.body["error"] == "GONE"
    assert call(handler, room_event("destroy", funded, "never-was"), lambda_context).status == 404
    status = call(handler, room_event("status", funded, "physics-101"), lambda_context).data
    assert status["exists"] and not status["isActive"]


def test_summary_counts_credits_participants_and_stay(funded, other_org, livekit: LiveKit, lambda_context):
    created = call(handler, create(funded), lambda_context).data
    name = f"{funded.id}.physics-101"
    join = call(
        handler,
        room_event("join", funded, "physics-101", {"participant": {"uid": "s-1", "name": "Sam"}}),
        lambda_context,
    ).data
    livekit.join(name, created["token"])
    livekit.join(name, join["token"])
    livekit.pump(handler, lambda_context, "participant_joined", "participant_joined")
    live = call(handler, room_event("summary", funded, "physics-101"), lambda_context).data
    assert live["status"] == "live" and live["totalParticipants"] == 2 and live["roomName"] == "Physics 101"
    call(handler, room_event("destroy", funded, "physics-101"), lambda_context)
    livekit.pump(handler, lambda_context, "participant_left", "participant_left", "room_finished")
    done = call(handler, room_event("summary", funded, "physics-101"), lambda_context).data
    assert done["status"] == "finished" and done["totalParticipants"] == 2
    assert done["timestamps"]["startedAt"] and done["timestamps"]["endedAt"]
    assert done["avgStay"] >= 0 and done["totalCredits"] >= 0
    foreign = call(handler, room_event("summary", other_org, "physics-101"), lambda_context)
    assert foreign.status == 404 and "Physics" not in json.dumps(foreign.body)


def test_rooms_routes_need_a_key(livekit: LiveKit, lambda_context):
    event = api_event(CREATE, headers={})
    assert call(handler, event, lambda_context).status == 401


def test_destroy_while_livekit_is_unreachable_is_503_and_the_class_goes_on(
    funded, livekit: LiveKit, lambda_context, monkeypatch
):
    from rooms import lk
    from rooms.config import live_settings
    from servers import free_port

    call(handler, create(funded), lambda_context)
    monkeypatch.setenv("LIVEKIT_URL", f"http://127.0.0.1:{free_port()}")
    live_settings.cache_clear()
    lk.reset()
    reply = call(handler, room_event("destroy", funded, "physics-101"), lambda_context)
    assert reply.status == 503 and reply.headers.get("Content-Type") == "application/json"
    status = call(handler, room_event("status", funded, "physics-101"), lambda_context).data
    assert status["isActive"] is True  # not marked ended while LiveKit still runs the room
    monkeypatch.setenv("LIVEKIT_URL", livekit.url)
    live_settings.cache_clear()
    assert call(handler, room_event("destroy", funded, "physics-101"), lambda_context).status == 200


def test_join_rejects_overlong_names_and_unknown_fields(funded, livekit: LiveKit, lambda_context):
    call(handler, create(funded), lambda_context)
    for body, field in (
        ({"participant": {"uid": "s", "name": "n" * 101}}, "participant.name"),
        (
            {"participant": {"uid": "s", "name": "n"}, "customization": {"allowEverything": True}},
            "customization.allowEverything",
        ),
    ):
        reply = call(handler, room_event("join", funded, "physics-101", body), lambda_context)
        assert reply.status == 400 and f"'{field}'" in reply.body["message"]
