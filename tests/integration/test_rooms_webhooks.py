"""LiveKit webhooks: signatures checked, each event id handled once, state kept, minutes metered
into the ledger once, domain events published. Webhooks come from the stand-in, signed as LiveKit
signs them, and go through the rooms handler as API Gateway would deliver them."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from livekit.api import AccessToken, VideoGrants
from livekit_support import EventTap, LiveKit, deliver, fund, rooms_event
from rooms.handler import handler
from support import api_event, call

pytest_plugins = ("livekit_support",)


@pytest.fixture
def room(org, livekit: LiveKit, lambda_context):
    fund(org.id)
    body = {"roomId": "chem-1", "title": "Chemistry", "participant": {"uid": "t-1", "name": "Ada"}}
    data = call(handler, api_event("rooms/create.json", headers=org.headers, body=body), lambda_context).data
    return {"name": f"{org.id}.chem-1", "token": data["token"], "sid": data["room"]["sid"]}


def join_token(org, lambda_context, uid, role="STUDENT"):
    body = {"participant": {"uid": uid, "name": uid.title(), "role": role}}
    return call(handler, rooms_event("join", org.headers, body, room_id="chem-1"), lambda_context).data[
        "token"
    ]


def test_unsigned_and_tampered_webhooks_are_rejected(room, livekit: LiveKit, lambda_context):
    (started,) = livekit.wait_for("room_started")
    unsigned = deliver(handler, lambda_context, type(started)(started.body, {}))
    assert unsigned.status == 401 and unsigned.body["error"] == "UNAUTHORIZED"
    tampered_body = started.body.replace("room_started", "room_finished")
    tampered = deliver(handler, lambda_context, type(started)(tampered_body, started.headers))
    assert tampered.status == 401
    forged_sig = AccessToken(livekit.api_key, "not-the-secret").with_sha256("x").to_jwt()
    forged = deliver(handler, lambda_context, type(started)(started.body, {"Authorization": forged_sig}))
    assert forged.status == 401
    ok = deliver(handler, lambda_context, started)
    assert ok.status == 200 and ok.data["event"] == "room_started" and ok.data["duplicate"] is False


def test_participant_minutes_are_metered_once_even_when_replayed(
    org, room, livekit: LiveKit, lambda_context, event_tap: EventTap
):
    from verriflo import db, ledger

    before = ledger.balance_milli(org.id)
    livekit.join(room["name"], room["token"])
    livekit.join(room["name"], join_token(org, lambda_context, "s-1"))
    livekit.pump(handler, lambda_context, "room_started", "participant_joined", "participant_joined")
    # Pretend the student stayed three minutes, so the charge is visible and exact.
    sessions = db.collection("room_sessions")
    student = sessions.find_one({"uid": "s-1"})
    sessions.update_one(
        {"_id": student["_id"]}, {"$set": {"joinedAt": student["joinedAt"] - timedelta(minutes=3)}}
    )
    livekit.leave(room["name"], "s-1")
    (left,) = livekit.wait_for("participant_left")
    first = deliver(handler, lambda_context, left)
    replay = deliver(handler, lambda_context, left)
    assert first.status == 200 and first.data["duplicate"] is False
    assert replay.status == 200 and replay.data["duplicate"] is True
    charged = before - ledger.balance_milli(org.id)
    assert 3000 <= charged <= 3050  # 3 participant-minutes = 3 credits (+ the second or so the test took)
    entries = list(db.collection("ledger").find({"orgId": org.id, "service": "live"}))
    assert (
        len(entries) == 1 and entries[0]["roomId"] == "chem-1" and entries[0]["unit"] == "participant-minute"
    )
    names = [e["type"] for e in event_tap.drain()]
    assert names.count("participant.joined") == 2 and names.count("participant.left") == 1
    assert "room.started" in names


def test_room_finished_closes_sessions_meters_them_and_publishes_once(
    org, room, livekit: LiveKit, lambda_context, event_tap: EventTap
):
    from verriflo import db

    livekit.join(room["name"], room["token"])
    livekit.pump(handler, lambda_context, "room_started", "participant_joined")
    # LiveKit closes the room by itself (empty timeout, or its own API): only webhooks tell us.
    livekit.stand_in._lock.acquire()
    try:
        livekit.stand_in._close(room["name"], 0)
    finally:
        livekit.stand_in._lock.release()
    replies = livekit.pump(handler, lambda_context, "participant_left", "room_finished")
    assert all(r.status == 200 for r in replies)
    status = call(handler, rooms_event("status", org.headers, room_id="chem-1"), lambda_context).data
    assert status["exists"] and not status["isActive"] and status["participantCount"] == 0
    assert db.collection("room_sessions").count_documents({"leftAt": None}) == 0
    assert db.collection("ledger").count_documents({"orgId": org.id, "service": "live"}) == 1
    finished = [e for e in event_tap.drain() if e["type"] == "room.finished"]
    assert len(finished) == 1 and finished[0]["data"]["roomId"] == "chem-1" and finished[0]["orgId"] == org.id
    again = call(handler, rooms_event("destroy", org.headers, room_id="chem-1"), lambda_context)
    assert again.status == 410


def test_webhook_for_a_room_we_do_not_know_is_acknowledged_and_ignored(livekit: LiveKit, lambda_context):
    from livekit.protocol import models, webhook

    event = webhook.WebhookEvent(event="room_started", id="EV_foreign", room=models.Room(name="someone-else"))
    reply = deliver(handler, lambda_context, livekit.signed(event))
    assert reply.status == 200 and reply.data["eventId"] == "EV_foreign"


def test_failed_handling_releases_the_event_id_so_the_retry_counts(
    org, room, livekit: LiveKit, lambda_context, monkeypatch
):
    from rooms import webhooks
    from verriflo.errors import ServiceUnavailable

    livekit.join(room["name"], room["token"])
    started, joined = livekit.wait_for("room_started", "participant_joined")
    assert deliver(handler, lambda_context, started).status == 200

    def broken(*_a, **_k):
        raise ServiceUnavailable("The event bus is unavailable; retry shortly.")

    monkeypatch.setattr(webhooks.events, "publish", broken)
    assert deliver(handler, lambda_context, joined).status == 503
    monkeypatch.undo()
    retry = deliver(handler, lambda_context, joined)
    assert retry.status == 200 and retry.data["duplicate"] is False
    status = call(handler, rooms_event("status", org.headers, room_id="chem-1"), lambda_context).data
    assert status["participantCount"] == 1  # the session was recorded once, not twice
    assert json.loads(joined.body)["participant"]["identity"] == "t-1"


def test_a_webhook_that_beats_our_own_write_is_refused_for_a_retry(org, livekit: LiveKit, lambda_context):
    import time

    from livekit.protocol import models, webhook

    def signed(event_id: str, created_at: int):
        event = webhook.WebhookEvent(
            event="room_started",
            id=event_id,
            created_at=created_at,
            room=models.Room(name=f"{org.id}.not-yet", sid="RM_early"),
        )
        return livekit.signed(event)

    fresh = deliver(handler, lambda_context, signed("EV_fresh", int(time.time())))
    assert fresh.status == 503  # LiveKit will deliver it again
    stale = deliver(handler, lambda_context, signed("EV_stale", int(time.time()) - 3600))
    assert stale.status == 200  # an old event for a room we never stored is dropped
    fund(org.id)
    body = {"roomId": "not-yet", "title": "Late", "participant": {"uid": "t-1", "name": "Ada"}}
    call(handler, api_event("rooms/create.json", headers=org.headers, body=body), lambda_context)
    retry = deliver(handler, lambda_context, signed("EV_fresh", int(time.time())))
    assert retry.status == 200 and retry.data["duplicate"] is False


def test_recorder_and_agent_participants_are_neither_counted_nor_billed(
    org, room, livekit: LiveKit, lambda_context
):
    from livekit.protocol import models, webhook
    from verriflo import db

    livekit.pump(handler, lambda_context, "room_started")
    recorder = models.ParticipantInfo(
        sid="PA_rec", identity="EG_rec", kind=models.ParticipantInfo.Kind.EGRESS, joined_at=1
    )
    for name in ("participant_joined", "participant_left"):
        event = webhook.WebhookEvent(
            event=name, id=f"EV_rec_{name}", room=models.Room(name=room["name"]), participant=recorder
        )
        reply = deliver(handler, lambda_context, livekit.signed(event))
        assert reply.status == 200
    assert db.collection("room_sessions").count_documents({}) == 0
    assert db.collection("ledger").count_documents({"service": "live"}) == 0


@pytest.mark.parametrize("metadata", ['{"role": ["TEACHER"]}', '{"role": "OWNER"}', "null", "not json"])
def test_a_participant_with_odd_metadata_joins_as_a_student(
    org, room, livekit: LiveKit, lambda_context, metadata
):
    """Join metadata is our token's, but should anything else arrive, it grants the least: the
    session (where roles come from) says STUDENT and the class has no teacher."""
    from verriflo import db

    livekit.pump(handler, lambda_context, "room_started")
    livekit.admin(
        "POST",
        f"/admin/rooms/{room['name']}/participants",
        {"identity": "x-1", "name": "X", "metadata": metadata},
        token=livekit.server_token(VideoGrants(room_admin=True, room=room["name"])),
    )
    (reply,) = livekit.pump(handler, lambda_context, "participant_joined")
    assert reply.status == 200
    session = db.collection("room_sessions").find_one({"uid": "x-1"})
    assert session["role"] == "STUDENT" and session["customization"] == {}
    status = call(handler, rooms_event("status", org.headers, room_id="chem-1"), lambda_context).data
    assert status["participantCount"] == 1 and status["hasTeacher"] is False
