"""Participant management over the API: list, remove, mute a track, change role or permissions;
each applied in LiveKit (the stand-in) and refused for another org's rooms."""

from __future__ import annotations

import json
import urllib.error

import pytest
from livekit.api import VideoGrants
from livekit_support import EventTap, LiveKit, deliver, fund, rooms_event, twirp
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
    return {
        "name": name,
        "teacher_track": teacher["tracks"][0]["sid"],
        "teacher_token": created["token"],
        "student_token": student["token"],
    }


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


def remove(headers: dict[str, str], uid: str, ctx, room_id: str = "math-1"):
    return call(handler, rooms_event("participant_remove", headers, room_id=room_id, uid=uid), ctx)


def join_token(headers: dict[str, str], uid: str, ctx, room_id: str = "math-1") -> str:
    """A join token the org's server gets for a student (no browser connects with it yet)."""
    body = {"participant": {"uid": uid, "name": uid.title(), "role": "STUDENT"}}
    reply = call(handler, rooms_event("join", headers, body, room_id=room_id), ctx)
    assert reply.status == 200, reply.body
    return reply.data["token"]


def grant_of(uid: str) -> dict:
    from verriflo import db

    return db.collection("room_grants").find_one({"uid": uid})


def test_remove_a_participant(org, classroom, livekit: LiveKit, lambda_context):
    reply = remove(org.headers, "s-1", lambda_context)
    assert reply.status == 200
    assert reply.data == {"roomId": "math-1", "uid": "s-1", "removed": True, "connected": True}
    assert in_standin(livekit, "s-1") is None
    livekit.pump(handler, lambda_context, "participant_left")
    status = call(handler, rooms_event("status", org.headers, room_id="math-1"), lambda_context).data
    assert status["participantCount"] == 1
    # removed already: neither connected nor holding a token that admits them (as for an unconnected one)
    assert remove(org.headers, "s-1", lambda_context).status == 404


def test_a_participant_who_leaves_while_being_removed_is_removed(
    org, classroom, livekit: LiveKit, lambda_context, monkeypatch
):
    from rooms import lk

    real = lk.remove_participant

    def leaves_first(room: str, identity: str, **options):
        livekit.leave(classroom["name"], identity)  # they close the tab a moment before
        return real(room, identity, **options)

    monkeypatch.setattr(lk, "remove_participant", leaves_first)
    reply = remove(org.headers, "s-1", lambda_context)
    assert reply.status == 200 and reply.data["connected"] is True
    assert grant_of("s-1")["removedAt"] is not None and in_standin(livekit, "s-1") is None


def test_a_student_holding_a_token_who_has_not_connected_is_removed(
    org, classroom, livekit: LiveKit, lambda_context
):
    join_token(org.headers, "s-2", lambda_context)
    assert grant_of("s-2").get("removedAt") is None
    reply = remove(org.headers, "s-2", lambda_context)
    assert reply.status == 200
    assert reply.data == {"roomId": "math-1", "uid": "s-2", "removed": True, "connected": False}
    assert grant_of("s-2")["removedAt"] is not None and not grant_of("s-2").get("removedSids")
    # the second removal finds nothing to remove, as for a student removed while connected
    again = remove(org.headers, "s-2", lambda_context)
    assert again.status == 404 and again.body["error"] == "NOT_FOUND"
    # nobody else was touched
    assert in_standin(livekit, "s-1") is not None and in_standin(livekit, "t-1") is not None


def test_removing_a_uid_with_no_token_and_no_connection_is_404(org, classroom, lambda_context):
    reply = remove(org.headers, "s-404", lambda_context)
    assert reply.status == 404 and reply.body["error"] == "NOT_FOUND"
    assert grant_of("s-404") is None  # nothing written for it


def test_another_orgs_token_holder_is_404_and_stays_admitted(
    org, other_org, classroom, livekit: LiveKit, lambda_context
):
    """The same roomId in two orgs: each org removes only from its own room."""
    join_token(org.headers, "s-2", lambda_context)
    fund(other_org.id)
    body = {"roomId": "math-1", "title": "Theirs", "participant": {"uid": "t-9", "name": "Tom"}}
    theirs = api_event("rooms/create.json", headers=other_org.headers, body=body)
    assert call(handler, theirs, lambda_context).status == 200
    join_token(other_org.headers, "s-9", lambda_context)
    for headers, uid in ((other_org.headers, "s-2"), (org.headers, "s-9")):
        reply = remove(headers, uid, lambda_context)
        assert reply.status == 404 and "Sam" not in json.dumps(reply.body), (uid, reply.body)
    from verriflo import db

    assert db.collection("room_grants").count_documents({"removedAt": {"$exists": True}}) == 0
    assert remove(org.headers, "s-2", lambda_context).status == 200
    assert remove(other_org.headers, "s-9", lambda_context).status == 200


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


# --- a removed participant connecting later: turned away by LiveKit's participant_joined ----------------


def sessions_of(uid: str) -> list[dict]:
    from verriflo import db

    return list(db.collection("room_sessions").find({"uid": uid}))


def live_charges(uid: str) -> int:
    from verriflo import db

    return db.collection("ledger").count_documents({"service": "live", "meta.uid": uid})


def about(uid: str, events: list[dict]) -> list[str]:
    return [e["type"] for e in events if e["data"].get("uid") == uid]


def participant_count(org, ctx) -> int:
    return call(handler, rooms_event("status", org.headers, room_id="math-1"), ctx).data["participantCount"]


def test_a_removed_student_connecting_with_their_old_token_is_turned_away_unbilled_and_unannounced(
    org, classroom, livekit: LiveKit, lambda_context, event_tap: EventTap
):
    token = join_token(org.headers, "s-2", lambda_context)
    assert remove(org.headers, "s-2", lambda_context).data["connected"] is False
    event_tap.drain()
    livekit.join(classroom["name"], token)  # LiveKit knows nothing of our removals: it lets them in
    (joined,) = livekit.wait_for("participant_joined")
    first = deliver(handler, lambda_context, joined)
    assert first.status == 200 and first.data["duplicate"] is False
    assert in_standin(livekit, "s-2") is None  # disconnected at once
    (left,) = livekit.wait_for("participant_left")  # LiveKit reports the disconnection
    assert deliver(handler, lambda_context, left).status == 200
    again = deliver(handler, lambda_context, joined)  # LiveKit delivers it again
    assert again.status == 200 and again.data["duplicate"] is True
    assert sessions_of("s-2") == [] and live_charges("s-2") == 0
    assert participant_count(org, lambda_context) == 2
    assert about("s-2", event_tap.drain()) == []  # neither participant.joined nor participant.left
    assert in_standin(livekit, "s-1") is not None  # the others stay


def test_a_student_removed_while_connected_who_reconnects_is_turned_away(
    org, classroom, livekit: LiveKit, lambda_context, event_tap: EventTap
):
    assert remove(org.headers, "s-1", lambda_context).data["connected"] is True
    livekit.pump(handler, lambda_context, "participant_left")
    [stay] = sessions_of("s-1")
    assert stay["leftAt"] is not None and live_charges("s-1") == 1
    event_tap.drain()
    livekit.join(classroom["name"], classroom["student_token"])  # what their page still holds
    livekit.pump(handler, lambda_context, "participant_joined")  # disconnects them...
    livekit.pump(handler, lambda_context, "participant_left")  # ...which LiveKit reports
    assert in_standin(livekit, "s-1") is None
    assert len(sessions_of("s-1")) == 1 and live_charges("s-1") == 1
    assert about("s-1", event_tap.drain()) == []


def test_a_stay_that_began_before_the_removal_is_billed_when_its_webhook_comes_late(
    org, classroom, livekit: LiveKit, lambda_context, event_tap: EventTap
):
    livekit.join(classroom["name"], join_token(org.headers, "s-2", lambda_context))
    (late,) = livekit.wait_for("participant_joined")  # not delivered yet (LiveKit will retry it)
    assert remove(org.headers, "s-2", lambda_context).data["connected"] is True
    (left,) = livekit.wait_for("participant_left")
    event_tap.drain()
    assert deliver(handler, lambda_context, late).status == 200
    assert deliver(handler, lambda_context, left).status == 200
    [stay] = sessions_of("s-2")
    assert stay["leftAt"] is not None and live_charges("s-2") == 1
    assert sorted(about("s-2", event_tap.drain())) == ["participant.joined", "participant.left"]


def test_a_removed_student_given_a_new_token_is_admitted_again(
    org, classroom, livekit: LiveKit, lambda_context, event_tap: EventTap
):
    join_token(org.headers, "s-2", lambda_context)
    assert remove(org.headers, "s-2", lambda_context).status == 200
    token = join_token(org.headers, "s-2", lambda_context)  # the org's server lets them back in
    assert grant_of("s-2").get("removedAt") is None
    event_tap.drain()
    livekit.join(classroom["name"], token)
    (reply,) = livekit.pump(handler, lambda_context, "participant_joined")
    assert reply.status == 200
    assert in_standin(livekit, "s-2") is not None
    [stay] = sessions_of("s-2")
    assert stay["leftAt"] is None and stay["role"] == "STUDENT"
    assert about("s-2", event_tap.drain()) == ["participant.joined"]
    assert participant_count(org, lambda_context) == 3
    # and can be removed again, connected this time
    assert remove(org.headers, "s-2", lambda_context).data["connected"] is True
    assert in_standin(livekit, "s-2") is None


# --- a removal made from the classroom page: LiveKit's participant_left says PARTICIPANT_REMOVED ------


def page_remove(livekit: LiveKit, classroom, uid: str, token: str | None = None) -> None:
    """A room admin's classroom page removes `uid`: LiveKit's RemoveParticipant with its own join token."""
    body = {"room": classroom["name"], "identity": uid}
    status, answer = twirp(livekit.url, "RemoveParticipant", body, token or classroom["teacher_token"])
    assert status == 200, answer


def reason(delivery) -> str:
    return json.loads(delivery.body)["participant"].get("disconnectReason", "UNKNOWN_REASON")


def forget_webhook_ids() -> None:
    """Our record of the webhook ids handled ran out (after its TTL): a redelivery is handled again."""
    from rooms.records import HOOKS
    from verriflo import db

    db.collection(HOOKS).delete_many({})


def test_a_student_removed_from_the_classroom_page_is_kept_out_until_given_a_new_token(
    org, classroom, livekit: LiveKit, lambda_context, event_tap: EventTap
):
    connection = in_standin(livekit, "s-1")["sid"]
    event_tap.drain()
    page_remove(livekit, classroom, "s-1")
    (left,) = livekit.wait_for("participant_left")
    assert reason(left) == "PARTICIPANT_REMOVED"  # as LiveKit reports it (ParticipantInfo.disconnect_reason)
    assert deliver(handler, lambda_context, left).status == 200
    grant = grant_of("s-1")
    assert grant["removedAt"] is not None and grant["removedSids"] == [connection]
    # their stay until the removal is closed, billed and announced as any leave
    [stay] = sessions_of("s-1")
    assert stay["leftAt"] is not None and live_charges("s-1") == 1
    assert about("s-1", event_tap.drain()) == ["participant.left"]
    # the org's server finds them removed, as after its own DELETE
    assert remove(org.headers, "s-1", lambda_context).status == 404
    # their page reconnects with the token it holds: turned away, unbilled, unannounced
    livekit.join(classroom["name"], classroom["student_token"])
    livekit.pump(handler, lambda_context, "participant_joined")
    assert in_standin(livekit, "s-1") is None
    (turned_away,) = livekit.wait_for("participant_left")  # our own removal: recorded already
    assert reason(turned_away) == "PARTICIPANT_REMOVED"
    assert deliver(handler, lambda_context, turned_away).status == 200
    # LiveKit delivers the removal again, also after our record of its id ran out: nothing changes
    assert deliver(handler, lambda_context, left).data["duplicate"] is True
    forget_webhook_ids()
    assert deliver(handler, lambda_context, left).data["duplicate"] is False
    assert grant_of("s-1") == grant
    assert len(sessions_of("s-1")) == 1 and live_charges("s-1") == 1
    assert about("s-1", event_tap.drain()) == ["participant.left"]  # the same event id again
    # the org's server lets them back in with a new token
    token = join_token(org.headers, "s-1", lambda_context)
    livekit.join(classroom["name"], token)
    livekit.pump(handler, lambda_context, "participant_joined")
    assert in_standin(livekit, "s-1") is not None and len(sessions_of("s-1")) == 2


@pytest.mark.parametrize("first", ["after the readmission", "before the readmission"])
def test_a_page_removal_reported_after_the_student_was_readmitted_leaves_them_admitted(
    org, classroom, livekit: LiveKit, lambda_context, first
):
    """LiveKit's participant_left comes late (LiveKit retrying), or again after our record of its id
    ran out, once the org's server has given the student a new token: the readmission stands."""
    page_remove(livekit, classroom, "s-1")
    (left,) = livekit.wait_for("participant_left")
    if first == "before the readmission":
        assert deliver(handler, lambda_context, left).status == 200
        assert grant_of("s-1")["removedAt"] is not None
    token = join_token(org.headers, "s-1", lambda_context)
    assert grant_of("s-1").get("removedAt") is None
    forget_webhook_ids()
    reply = deliver(handler, lambda_context, left)
    assert reply.status == 200 and reply.data["duplicate"] is False
    assert grant_of("s-1").get("removedAt") is None
    livekit.join(classroom["name"], token)
    livekit.pump(handler, lambda_context, "participant_joined")
    assert in_standin(livekit, "s-1") is not None
    assert [s["leftAt"] is None for s in sessions_of("s-1")] == [False, True]


@pytest.mark.parametrize(
    "cause", ["CLIENT_INITIATED", "DUPLICATE_IDENTITY", "ROOM_DELETED", "a newer reason"]
)
def test_a_student_disconnected_for_another_reason_is_not_removed(
    org, classroom, livekit: LiveKit, lambda_context, cause
):
    name = classroom["name"]
    if cause == "ROOM_DELETED":
        assert (
            call(handler, rooms_event("destroy", org.headers, room_id="math-1"), lambda_context).status == 200
        )
        deliveries = livekit.wait_for("participant_left", "participant_left")
    elif cause == "DUPLICATE_IDENTITY":
        livekit.join(name, classroom["student_token"])  # a second tab: LiveKit drops the first
        deliveries = livekit.wait_for("participant_left")
    else:
        livekit.leave(name, "s-1")
        deliveries = livekit.wait_for("participant_left")
    (left,) = [d for d in deliveries if json.loads(d.body)["participant"]["identity"] == "s-1"]
    if cause == "a newer reason":  # a DisconnectReason added to LiveKit after our protocol package
        event = json.loads(left.body)
        event["participant"]["disconnectReason"] = 977
        body = json.dumps(event)
        left = type(left)(body, {"Authorization": livekit.stand_in.sign(body)})
    else:
        assert reason(left) == cause
    assert deliver(handler, lambda_context, left).status == 200
    assert grant_of("s-1").get("removedAt") is None
    assert [s["leftAt"] is not None for s in sessions_of("s-1")] == [True]


def test_a_teacher_removed_from_the_classroom_page_may_reconnect(
    org, classroom, livekit: LiveKit, lambda_context
):
    """On the page any room admin may remove anyone, a moderator too; only a student is kept out by
    it. The org's server still keeps anyone out with DELETE."""
    body = {"participant": {"uid": "m-1", "name": "Max", "role": "MODERATOR"}}
    moderator = call(handler, rooms_event("join", org.headers, body, room_id="math-1"), lambda_context)
    livekit.join(classroom["name"], moderator.data["token"])
    livekit.pump(handler, lambda_context, "participant_joined")
    page_remove(livekit, classroom, "t-1", token=moderator.data["token"])
    (left,) = livekit.pump(handler, lambda_context, "participant_left")
    assert left.status == 200 and grant_of("t-1").get("removedAt") is None
    livekit.join(classroom["name"], classroom["teacher_token"])
    livekit.pump(handler, lambda_context, "participant_joined")
    assert in_standin(livekit, "t-1") is not None
    assert remove(org.headers, "t-1", lambda_context).data["connected"] is True
    assert grant_of("t-1")["removedAt"] is not None
