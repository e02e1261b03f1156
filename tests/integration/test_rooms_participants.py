"""Participant management over the API: list, remove, mute a track, change role or permissions;
each applied in LiveKit (the stand-in) and refused for another org's rooms."""

from __future__ import annotations

import json
import urllib.error

import pytest
from livekit.api import VideoGrants
from livekit_support import LiveKit, fund, rooms_event, twirp
from rooms.handler import handler
from support import api_event, call

pytest_plugins = ("livekit_support",)
MIC = [{"type": "AUDIO", "source": "MICROPHONE"}]


@pytest.fixture
def classroom(org, livekit: LiveKit, lambda_context):
    fund(org.id)
    body = {
        "roomId": "math-1",
        "title": "Maths",
        "participant": {"uid": "t-1", "name": "Ada", "role": "TEACHER"},
    }
    created = call(
        handler, api_event("rooms/create.json", headers=org.headers, body=body), lambda_context
    ).data
    join = {"participant": {"uid": "s-1", "name": "Sam", "role": "STUDENT"}}
    student = call(handler, rooms_event("join", org.headers, join, room_id="math-1"), lambda_context).data
    name = f"{org.id}.math-1"
    teacher = livekit.join(name, created["token"], MIC)
    livekit.join(name, student["token"])
    livekit.pump(handler, lambda_context, "room_started", "participant_joined", "participant_joined")
    return {"name": name, "teacher_track": teacher["tracks"][0]["sid"]}


def in_standin(livekit: LiveKit, uid: str):
    room = livekit.stand_in.state()["rooms"][0]
    return next((p for p in room["participants"] if p["identity"] == uid), None)


def test_list_shows_roles_tracks_and_permissions(org, classroom, lambda_context):
    reply = call(handler, rooms_event("participants_list", org.headers, room_id="math-1"), lambda_context)
    assert reply.status == 200
    people = {p["uid"]: p for p in reply.data["participants"]}
    assert people["t-1"]["role"] == "TEACHER" and people["s-1"]["role"] == "STUDENT"
    assert people["t-1"]["tracks"][0]["source"] == "MICROPHONE" and people["t-1"]["state"] == "ACTIVE"
    assert people["t-1"]["permissions"]["canPublish"] and people["t-1"]["permissions"]["canScreenShare"]
    assert not people["s-1"]["permissions"]["canPublish"]


def test_mute_a_track(org, classroom, livekit: LiveKit, lambda_context):
    body = {"trackSid": classroom["teacher_track"], "muted": True}
    reply = call(
        handler,
        rooms_event("participant_mute", org.headers, body, room_id="math-1", uid="t-1"),
        lambda_context,
    )
    assert reply.status == 200 and reply.data["tracks"][0]["muted"] is True
    assert in_standin(livekit, "t-1")["tracks"][0]["muted"] is True
    unknown = call(
        handler,
        rooms_event("participant_mute", org.headers, {"trackSid": "TR_nope"}, room_id="math-1", uid="t-1"),
        lambda_context,
    )
    assert unknown.status == 404


def test_promote_a_student_to_moderator_and_take_screen_share_away(
    org, classroom, livekit: LiveKit, lambda_context
):
    reply = call(
        handler,
        rooms_event("participant_update", org.headers, {"role": "MODERATOR"}, room_id="math-1", uid="s-1"),
        lambda_context,
    )
    assert (
        reply.status == 200 and reply.data["role"] == "MODERATOR" and reply.data["permissions"]["canPublish"]
    )
    live = in_standin(livekit, "s-1")
    assert live["permission"]["canPublish"] and json.loads(live["metadata"])["role"] == "MODERATOR"
    body = {"permissions": {"canScreenShare": False}}
    reply = call(
        handler,
        rooms_event("participant_update", org.headers, body, room_id="math-1", uid="s-1"),
        lambda_context,
    )
    assert reply.status == 200 and reply.data["permissions"]["canScreenShare"] is False
    assert "SCREEN_SHARE" not in in_standin(livekit, "s-1")["permission"]["canPublishSources"]
    bad = call(
        handler,
        rooms_event("participant_update", org.headers, {"role": "OWNER"}, room_id="math-1", uid="s-1"),
        lambda_context,
    )
    assert bad.status == 400 and "'role'" in bad.body["message"]


def test_remove_a_participant(org, classroom, livekit: LiveKit, lambda_context):
    reply = call(
        handler, rooms_event("participant_remove", org.headers, room_id="math-1", uid="s-1"), lambda_context
    )
    assert reply.status == 200 and reply.data == {"roomId": "math-1", "uid": "s-1", "removed": True}
    assert in_standin(livekit, "s-1") is None
    livekit.pump(handler, lambda_context, "participant_left")
    status = call(handler, rooms_event("status", org.headers, room_id="math-1"), lambda_context).data
    assert status["participantCount"] == 1
    again = call(
        handler, rooms_event("participant_remove", org.headers, room_id="math-1", uid="s-1"), lambda_context
    )
    assert again.status == 404


def test_another_org_cannot_see_or_touch_participants(
    org, other_org, classroom, livekit: LiveKit, lambda_context
):
    calls = [
        rooms_event("participants_list", other_org.headers, room_id="math-1"),
        rooms_event("participant_remove", other_org.headers, room_id="math-1", uid="s-1"),
        rooms_event(
            "participant_mute",
            other_org.headers,
            {"trackSid": classroom["teacher_track"]},
            room_id="math-1",
            uid="t-1",
        ),
        rooms_event("participant_update", other_org.headers, {"role": "ADMIN"}, room_id="math-1", uid="s-1"),
    ]
    for event in calls:
        reply = call(handler, event, lambda_context)
        assert (
            reply.status == 404
            and "Sam" not in json.dumps(reply.body)
            and "Ada" not in json.dumps(reply.body)
        )
    assert in_standin(livekit, "s-1") is not None
    assert json.loads(in_standin(livekit, "s-1")["metadata"])["role"] == "STUDENT"


def test_participants_of_an_ended_class_are_410(org, classroom, lambda_context):
    call(handler, rooms_event("destroy", org.headers, room_id="math-1"), lambda_context)
    reply = call(handler, rooms_event("participants_list", org.headers, room_id="math-1"), lambda_context)
    assert reply.status == 410


def test_a_student_cannot_rewrite_their_own_metadata(org, classroom, livekit: LiveKit, lambda_context):
    join = {"participant": {"uid": "s-2", "name": "Sly", "role": "STUDENT"}}
    token = call(handler, rooms_event("join", org.headers, join, room_id="math-1"), lambda_context).data[
        "token"
    ]
    livekit.join(classroom["name"], token)
    claim = {"metadata": json.dumps({"role": "TEACHER"}), "name": "Head Teacher"}
    with pytest.raises(urllib.error.HTTPError) as refused:  # the client SDK's setMetadata / setName
        livekit.admin(
            "POST", f"/admin/rooms/{classroom['name']}/participants/s-2/metadata", claim, token=token
        )
    assert refused.value.code == 403
    assert json.loads(in_standin(livekit, "s-2")["metadata"])["role"] == "STUDENT"


@pytest.mark.parametrize(
    "written", [{"role": "TEACHER"}, {"role": ["TEACHER"]}, {"role": {"x": 1}}, "null", "]["]
)
def test_roles_come_from_our_sessions_not_from_livekit_metadata(
    org, classroom, livekit: LiveKit, lambda_context, written
):
    """Whatever a participant's LiveKit metadata says (a room admin's token may rewrite it), the API's
    role is the one our join token granted: listed, kept by PATCH without a role, and written back."""
    metadata = (
        written
        if isinstance(written, str)
        else json.dumps(written | {"customization": {"allowScreenShare": True}})
    )
    admin = livekit.server_token(VideoGrants(room_admin=True, room=classroom["name"]))
    status, _ = twirp(
        livekit.url,
        "UpdateParticipant",
        {"room": classroom["name"], "identity": "s-1", "metadata": metadata},
        admin,
    )
    assert status == 200
    listed = call(handler, rooms_event("participants_list", org.headers, room_id="math-1"), lambda_context)
    assert listed.status == 200
    assert {p["uid"]: p["role"] for p in listed.data["participants"]} == {"t-1": "TEACHER", "s-1": "STUDENT"}
    body = {"permissions": {"canSubscribe": True}}
    reply = call(
        handler,
        rooms_event("participant_update", org.headers, body, room_id="math-1", uid="s-1"),
        lambda_context,
    )
    assert reply.status == 200 and reply.data["role"] == "STUDENT"
    assert not reply.data["permissions"]["canPublish"] and not reply.data["permissions"]["canScreenShare"]
    live = in_standin(livekit, "s-1")
    assert json.loads(live["metadata"])["role"] == "STUDENT" and not live["permission"].get("canPublish")
