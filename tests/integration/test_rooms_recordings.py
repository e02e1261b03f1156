"""Recordings: who may start one, the Egress request LiveKit gets, the real MP4 that lands in the
recordings bucket, listing, download links and their 6-hour lifetime, and org isolation."""

from __future__ import annotations

import subprocess
from datetime import datetime, timedelta

import pytest
from livekit_support import RECORDINGS_BUCKET, EventTap, LiveKit, fund, rooms_event
from rooms.handler import handler
from support import api_event, call

pytest_plugins = ("livekit_support",)
MP4 = [{"type": "AUDIO", "source": "MICROPHONE"}, {"type": "VIDEO", "source": "CAMERA"}]


def make_room(org, ctx, room_id="bio-1", customization=None):
    body = {
        "roomId": room_id,
        "title": "Biology",
        "participant": {"uid": "t-1", "name": "Ada", "role": "TEACHER"},
        "customization": customization or {},
    }
    return call(handler, api_event("rooms/create.json", headers=org.headers, body=body), ctx).data


def start(org, ctx, room_id="bio-1", body=None):
    return call(
        handler,
        rooms_event("recording_start", org.headers, body if body is not None else {}, room_id=room_id),
        ctx,
    )


@pytest.fixture
def teacher_in_room(org, livekit: LiveKit, lambda_context):
    fund(org.id)
    created = make_room(org, lambda_context)
    livekit.join(f"{org.id}.bio-1", created["token"], MP4)
    livekit.pump(handler, lambda_context, "room_started", "participant_joined")
    return created


def test_recording_needs_a_teacher_in_the_room(org, livekit: LiveKit, lambda_context):
    fund(org.id)
    make_room(org, lambda_context)
    reply = start(org, lambda_context)
    assert reply.status == 403 and reply.body["error"] == "FORBIDDEN"
    assert livekit.stand_in.state()["egress"] == []


def test_a_student_or_moderator_cannot_start_a_recording(
    org, teacher_in_room, livekit: LiveKit, lambda_context
):
    for uid, role in (("s-1", "STUDENT"), ("m-1", "MODERATOR")):
        body = {"participant": {"uid": uid, "name": uid, "role": role}}
        token = call(handler, rooms_event("join", org.headers, body, room_id="bio-1"), lambda_context).data[
            "token"
        ]
        livekit.join(f"{org.id}.bio-1", token)
        livekit.pump(handler, lambda_context, "participant_joined")
        reply = start(org, lambda_context, body={"requestedBy": uid})
        assert reply.status == 403
    assert livekit.stand_in.state()["egress"] == []


def test_recording_turned_off_by_customization_is_403(org, livekit: LiveKit, lambda_context):
    fund(org.id)
    created = make_room(org, lambda_context, customization={"allowRecording": False})
    livekit.join(f"{org.id}.bio-1", created["token"])
    livekit.pump(handler, lambda_context, "room_started", "participant_joined")
    reply = start(org, lambda_context)
    assert reply.status == 403 and "allowRecording" in reply.body["message"]


def test_bad_recording_options_are_400(org, teacher_in_room, lambda_context):
    for options, field in (
        ({"layout": "mosaic"}, "options.layout"),
        ({"preset": "H264_4K"}, "options.preset"),
    ):
        reply = start(org, lambda_context, body={"options": options})
        assert reply.status == 400 and f"'{field}'" in reply.body["message"]


def test_record_stop_list_download_a_real_mp4(
    org, other_org, teacher_in_room, livekit: LiveKit, lambda_context, event_tap: EventTap, tmp_path
):
    import boto3

    reply = start(
        org,
        lambda_context,
        body={
            "options": {"layout": "speaker", "preset": "H264_720P_30", "showLogo": True},
            "requestedBy": "t-1",
        },
    )
    assert reply.status == 200, reply.body
    data = reply.data
    assert data["egressId"].startswith("EG_") and data["roomId"] == "bio-1"
    assert data["status"] == "EGRESS_STARTING" and data["startedAt"]
    (egress,) = livekit.stand_in.state()["egress"]
    request = egress["roomComposite"]
    assert request["layout"] == "speaker" and request["preset"] == "H264_720P_30"
    assert request["fileOutputs"][0]["s3"]["bucket"] == RECORDINGS_BUCKET
    assert request["fileOutputs"][0]["filepath"].startswith(f"recordings/{org.id}/bio-1/")
    assert start(org, lambda_context).status == 409  # one recording at a time
    status = call(handler, rooms_event("status", org.headers, room_id="bio-1"), lambda_context).data
    assert status["isRecording"] is True
    livekit.pump(handler, lambda_context, "egress_started")

    # another org sees none of it
    for name, params in (
        ("recording_stop", {}),
        ("recording_list", {}),
        ("recording_download", {"egress_id": data["egressId"]}),
    ):
        foreign = call(
            handler,
            rooms_event(
                name, other_org.headers, {} if name == "recording_stop" else None, room_id="bio-1", **params
            ),
            lambda_context,
        )
        assert foreign.status == 404 and data["egressId"] not in str(foreign.body)

    stopped = call(handler, rooms_event("recording_stop", org.headers, {}, room_id="bio-1"), lambda_context)
    assert stopped.status == 200 and stopped.data["status"] == "EGRESS_ENDING"
    early = call(
        handler,
        rooms_event("recording_download", org.headers, room_id="bio-1", egress_id=data["egressId"]),
        lambda_context,
    )
    assert early.status == 409  # not uploaded yet
    livekit.pump(handler, lambda_context, "egress_ended", timeout=60)

    listed = call(handler, rooms_event("recording_list", org.headers, room_id="bio-1"), lambda_context).data
    (rec,) = listed["recordings"]
    assert rec["status"] == "EGRESS_COMPLETE" and rec["size"] > 1000 and rec["duration"] >= 1
    assert rec["layout"] == "speaker" and rec["showLogo"] is True and rec["downloadable"] is True
    link = call(
        handler,
        rooms_event("recording_download", org.headers, room_id="bio-1", egress_id=data["egressId"]),
        lambda_context,
    ).data
    assert RECORDINGS_BUCKET in link["url"] and "Signature" in link["url"] and link["expiresAt"]
    body = boto3.client("s3").get_object(Bucket=RECORDINGS_BUCKET, Key=request["fileOutputs"][0]["filepath"])
    path = tmp_path / "rec.mp4"
    path.write_bytes(body["Body"].read())
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "stream=codec_type", "-of", "csv=p=0", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert set(probe.stdout.split()) == {"video", "audio"}
    names = [e["type"] for e in event_tap.drain()]
    assert "recording.started" in names and names.count("recording.ready") == 1


def test_recordings_expire_six_hours_after_class(org, teacher_in_room, livekit: LiveKit, lambda_context):
    from verriflo import db

    egress_id = start(org, lambda_context).data["egressId"]
    livekit.pump(handler, lambda_context, "egress_started")
    ended = call(handler, rooms_event("destroy", org.headers, room_id="bio-1"), lambda_context)
    assert ended.status == 200 and ended.data["wasRecording"] is True
    livekit.pump(handler, lambda_context, "egress_ended", timeout=60)
    rec = db.collection("recordings").find_one({"_id": egress_id})
    assert rec["deleteAt"] is not None  # the TTL index removes the record then
    ok = call(
        handler,
        rooms_event("recording_download", org.headers, room_id="bio-1", egress_id=egress_id),
        lambda_context,
    )
    assert ok.status == 200
    room = db.collection("rooms").find_one({"roomId": "bio-1"})
    db.collection("rooms").update_one(
        {"_id": room["_id"]}, {"$set": {"endedAt": room["endedAt"] - timedelta(hours=7)}}
    )
    late = call(
        handler,
        rooms_event("recording_download", org.headers, room_id="bio-1", egress_id=egress_id),
        lambda_context,
    )
    assert late.status == 410
    listed = call(handler, rooms_event("recording_list", org.headers, room_id="bio-1"), lambda_context).data
    assert listed["recordings"][0]["downloadable"] is False


def test_recording_in_an_ended_room_is_410(org, teacher_in_room, lambda_context):
    call(handler, rooms_event("destroy", org.headers, room_id="bio-1"), lambda_context)
    assert start(org, lambda_context).status == 410
    assert (
        call(handler, rooms_event("recording_stop", org.headers, {}, room_id="bio-1"), lambda_context).status
        == 410
    )


def test_class_end_starts_the_media_records_retention_clock(
    org, teacher_in_room, livekit: LiveKit, lambda_context
):
    """The transcoder's retention sweep deletes recording files; ending the class tells it when."""
    from verriflo import db
    from verriflo import media as media_records

    egress_id = start(org, lambda_context).data["egressId"]
    livekit.pump(handler, lambda_context, "egress_started")
    call(handler, rooms_event("recording_stop", org.headers, {}, room_id="bio-1"), lambda_context)
    livekit.pump(handler, lambda_context, "egress_ended", timeout=60)
    key = db.collection("recordings").find_one({"_id": egress_id})["key"]
    file_id = key.rsplit("/", 1)[1].removesuffix(".mp4")
    assert media_records.RECORDING_KEY.match(key)  # the key shape the transcoder expects
    record = media_records.ensure_recording(
        org.id, "bio-1", file_id, RECORDINGS_BUCKET, key
    )  # the file arrived
    ended = call(handler, rooms_event("destroy", org.headers, room_id="bio-1"), lambda_context).data
    stored = db.collection(media_records.VIDEOS).find_one({"_id": record.id})
    ended_at = datetime.fromisoformat(ended["endedAt"])
    assert abs((stored["expiresAt"] - ended_at) - timedelta(hours=6)) < timedelta(seconds=2)
    listed = call(handler, rooms_event("recording_list", org.headers, room_id="bio-1"), lambda_context).data
    until = datetime.fromisoformat(listed["recordings"][0]["availableUntil"])
    assert abs(until - stored["expiresAt"]) < timedelta(seconds=2)


def test_egress_reported_before_the_start_call_stored_it_is_kept(
    org, teacher_in_room, livekit: LiveKit, lambda_context
):
    from livekit.protocol import egress, webhook
    from livekit_support import deliver

    info = egress.EgressInfo(
        egress_id="EG_early0000001",
        room_name=f"{org.id}.bio-1",
        status=egress.EGRESS_ACTIVE,
        started_at=1,
        room_composite=egress.RoomCompositeEgressRequest(layout="grid"),
    )
    for name in ("egress_started", "egress_updated"):
        event = webhook.WebhookEvent(event=name, id=f"EV_early_{name}", egress_info=info)
        reply = deliver(handler, lambda_context, livekit.signed(event))
        assert reply.status == 200
    listed = call(handler, rooms_event("recording_list", org.headers, room_id="bio-1"), lambda_context).data
    assert [(r["egressId"], r["status"]) for r in listed["recordings"]] == [
        ("EG_early0000001", "EGRESS_ACTIVE")
    ]
