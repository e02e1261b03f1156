"""Recordings: who may start one, the Egress request LiveKit gets, the real MP4 that lands in the
recordings bucket, listing, download links and their 6-hour lifetime, and org isolation."""

from __future__ import annotations

import subprocess
from datetime import datetime, timedelta

import pytest
from livekit_support import RECORDINGS_BUCKET, EventTap, LiveKit, deliver, fund, rooms_event, twirp
from rooms.handler import handler
from support import api_event, call, load_event

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


def test_recording_is_refused_with_402_once_the_rooms_cap_is_spent(
    org, teacher_in_room, livekit: LiveKit, lambda_context
):
    from verriflo import ledger

    ledger.record_usage(
        ledger.UsageEvent(entry_id="bio-live", org_id=org.id, service="live", credits=40, room_id="bio-1")
    )
    ledger.configure(org.id, caps=ledger.Caps(room_milli=40_000))
    reply = start(org, lambda_context)
    assert reply.status == 402 and "room's cap" in reply.body["message"]
    assert livekit.stand_in.state()["egress"] == []  # nothing started in LiveKit
    ledger.configure(org.id, caps=ledger.Caps(room_milli=41_000))
    assert start(org, lambda_context).status == 200


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


# --- recordings belong to whoever our API recorded for, and no one else ----------------------------


def _egress_attacks(org_id: str, victim_egress: str) -> list[tuple[str, dict]]:
    """What a token with the LiveKit project's roomRecord could do to another org's class."""
    stolen = {"filepath": "stolen/class.mp4", "s3": {"bucket": "attacker-bucket"}}
    return [
        ("ListEgress", {}),  # every org's room names and file keys
        ("StopEgress", {"egressId": victim_egress}),  # end another org's recording
        ("StartRoomCompositeEgress", {"roomName": f"{org_id}.bio-1", "fileOutputs": [stolen]}),
    ]


def test_join_tokens_of_another_org_cannot_list_stop_or_start_recordings(
    org, other_org, teacher_in_room, livekit: LiveKit, lambda_context
):
    egress_id = start(org, lambda_context).data["egressId"]
    fund(other_org.id)
    created = make_room(other_org, lambda_context, room_id="evil")  # the creator's TEACHER token
    body = {"participant": {"uid": "a-1", "name": "Root", "role": "ADMIN"}}
    admin = call(handler, rooms_event("join", other_org.headers, body, room_id="evil"), lambda_context).data
    for token in (created["token"], admin["token"]):
        for method, request in _egress_attacks(org.id, egress_id):
            status, answer = twirp(livekit.url, method, request, token, service="Egress")
            assert (status, answer["code"]) == (403, "permission_denied"), (method, answer)
    (egress,) = livekit.stand_in.state()["egress"]
    assert egress["egressId"] == egress_id and egress["status"] == "EGRESS_ACTIVE"
    # Nor through RoomService: their token is room admin of their own room only.
    victim = {"room": f"{org.id}.bio-1", "identity": "t-1"}
    status, _ = twirp(livekit.url, "RemoveParticipant", victim, created["token"])
    assert status == 403


def _aged(livekit: LiveKit, delivery, seconds: int):
    """The same webhook as LiveKit would deliver it again `seconds` later (signed anew)."""
    from google.protobuf import json_format
    from livekit.protocol import webhook

    event = json_format.Parse(delivery.body, webhook.WebhookEvent(), ignore_unknown_fields=True)
    event.created_at -= seconds
    event.id += "-later"
    return livekit.signed(event)


def test_an_egress_our_api_did_not_start_never_becomes_a_recording(
    org, teacher_in_room, livekit: LiveKit, lambda_context, event_tap: EventTap
):
    """Whoever holds the project's roomRecord records our class into our bucket, under our prefix: the
    webhook takes none of it (no record, no download link, no recording events)."""
    import boto3
    from livekit.api import VideoGrants

    key = f"recordings/{org.id}/bio-1/{'a' * 32}.mp4"
    output = {"filepath": key, "s3": {"bucket": RECORDINGS_BUCKET}}
    roomrecord = livekit.server_token(VideoGrants(room_record=True))
    status, info = twirp(
        livekit.url,
        "StartRoomCompositeEgress",
        {"roomName": f"{org.id}.bio-1", "fileOutputs": [output]},
        roomrecord,
        service="Egress",
    )
    assert status == 200
    (started,) = [d for d in livekit.wait_for("egress_started") if d.event == "egress_started"]
    assert deliver(handler, lambda_context, started).status == 503  # not known (yet): delivered again
    twirp(livekit.url, "StopEgress", {"egressId": info["egressId"]}, roomrecord, service="Egress")
    (ended,) = [d for d in livekit.wait_for("egress_ended", timeout=60) if d.event == "egress_ended"]
    assert deliver(handler, lambda_context, ended).status == 503
    for late in (_aged(livekit, started, 120), _aged(livekit, ended, 120)):
        assert deliver(handler, lambda_context, late).status == 200  # past the grace: ignored
    boto3.client("s3").head_object(Bucket=RECORDINGS_BUCKET, Key=key)  # the file is there ...
    listed = call(handler, rooms_event("recording_list", org.headers, room_id="bio-1"), lambda_context).data
    assert listed["recordings"] == []  # ... and is no recording of ours
    download = call(
        handler,
        rooms_event("recording_download", org.headers, room_id="bio-1", egress_id=info["egressId"]),
        lambda_context,
    )
    assert download.status == 404
    assert not [e for e in event_tap.drain() if e["type"].startswith("recording.")]


def test_our_egress_reported_with_another_destination_is_failed_not_ready(
    org, teacher_in_room, livekit: LiveKit, lambda_context, event_tap: EventTap
):
    from livekit.protocol import egress, webhook

    egress_id = start(org, lambda_context).data["egressId"]
    livekit.pump(handler, lambda_context, "egress_started")
    elsewhere = egress.EncodedFileOutput(
        filepath="elsewhere.mp4", s3=egress.S3Upload(bucket="attacker-bucket")
    )
    info = egress.EgressInfo(
        egress_id=egress_id,
        room_name=f"{org.id}.bio-1",
        status=egress.EGRESS_COMPLETE,
        room_composite=egress.RoomCompositeEgressRequest(file_outputs=[elsewhere]),
        file_results=[egress.FileInfo(filename="elsewhere.mp4", size=10, location="s3://attacker-bucket/x")],
    )
    event = webhook.WebhookEvent(event="egress_ended", id="EV_elsewhere", egress_info=info)
    assert deliver(handler, lambda_context, livekit.signed(event)).status == 200
    listed = call(handler, rooms_event("recording_list", org.headers, room_id="bio-1"), lambda_context).data
    (rec,) = listed["recordings"]
    assert rec["status"] == "EGRESS_FAILED" and not rec["downloadable"] and rec["size"] is None
    assert "recording.ready" not in [e["type"] for e in event_tap.drain()]


def test_a_record_naming_another_location_is_never_presigned(
    org, teacher_in_room, livekit: LiveKit, lambda_context
):
    """Records written before recordings were fenced may name any bucket: no link to those."""
    from verriflo import db

    egress_id = start(org, lambda_context).data["egressId"]
    db.collection("recordings").update_one(
        {"_id": egress_id},
        {"$set": {"status": "EGRESS_COMPLETE", "bucket": "attacker-bucket", "key": "stolen/class.mp4"}},
    )
    download = call(
        handler,
        rooms_event("recording_download", org.headers, room_id="bio-1", egress_id=egress_id),
        lambda_context,
    )
    assert download.status == 404 and "attacker-bucket" not in str(download.body)


# --- a recording is a video: its HLS in the room API and in the videos API ------------------------


def _listed(org, ctx) -> dict:
    return call(handler, rooms_event("recording_list", org.headers, room_id="bio-1"), ctx).data["recordings"][
        0
    ]


def _videos(org, ctx, **query) -> list[dict]:
    from cdn import handler as cdn

    reply = call(cdn.handler, api_event("cdn/list_videos.json", headers=org.headers, query=query), ctx)
    assert reply.status == 200, reply.body
    return reply.data["videos"]


def _of_catalogue(event: dict) -> bool:
    from verriflo import webhooks

    (entry,) = [e for e in webhooks.CATALOGUE if e.name == event["type"]]
    return set(event["data"]) <= set(entry.fields)


def test_a_recording_is_a_video_in_the_room_api_and_the_videos_api(
    org, other_org, teacher_in_room, livekit: LiveKit, lambda_context, event_tap: EventTap, monkeypatch
):
    from cdn import handler as cdn
    from cdn import logic as cdn_logic
    from media_support import use_media_env
    from transcode import handler as transcode
    from verriflo import db
    from verriflo.playback import verify

    use_media_env(monkeypatch)  # the same recordings bucket, with the media bucket and playback key
    egress_id = start(org, lambda_context).data["egressId"]
    livekit.pump(handler, lambda_context, "egress_started")
    call(handler, rooms_event("recording_stop", org.headers, {}, room_id="bio-1"), lambda_context)
    reports = livekit.wait_for("egress_ended", timeout=60)
    assert all(deliver(handler, lambda_context, d).status == 200 for d in reports)
    (ended,) = [d for d in reports if d.event == "egress_ended"]

    # The MP4 is stored: its video exists at once (transcoding), before any S3 trigger ran.
    key = db.collection("recordings").find_one({"_id": egress_id})["key"]
    video_id = "rec_" + key.rsplit("/", 1)[1].removesuffix(".mp4")
    rec = _listed(org, lambda_context)
    assert (rec["videoId"], rec["videoStatus"], rec["playbackUrl"]) == (video_id, "pending", None)
    download = call(
        handler,
        rooms_event("recording_download", org.headers, room_id="bio-1", egress_id=egress_id),
        lambda_context,
    ).data
    assert (download["videoId"], download["videoStatus"], download["playbackUrl"]) == (
        video_id,
        "pending",
        None,
    )

    # LiveKit delivers egress_ended again (a retry under a new id): no second record, no second event.
    assert deliver(handler, lambda_context, _aged(livekit, ended, 0)).status == 200

    # The file's arrival in S3 transcodes it (the S3 event the recordings bucket sends).
    arrived = load_event("transcode/s3_object_created.json")
    arrived["Records"][0]["s3"]["bucket"]["name"] = RECORDINGS_BUCKET
    arrived["Records"][0]["s3"]["object"]["key"] = key.replace("/", "%2F")
    (result,) = transcode.handler(arrived, lambda_context)["results"]
    assert (result["outcome"], result["videoId"]) == ("completed", video_id)

    rec = _listed(org, lambda_context)
    assert rec["videoId"] == video_id and rec["videoStatus"] == "completed"
    assert f"/v1/cdn/stream/{video_id}/master.m3u8?token=" in rec["playbackUrl"]
    token = rec["playbackUrl"].split("token=", 1)[1]
    assert verify(token, video_id).org_id == org.id
    assert "index.m3u8" in cdn_logic.master_playlist(video_id, token)  # it plays through the proxy
    download = call(
        handler,
        rooms_event("recording_download", org.headers, room_id="bio-1", egress_id=egress_id),
        lambda_context,
    ).data
    assert download["videoStatus"] == "completed" and download["playbackUrl"].startswith(
        rec["playbackUrl"].split("?")[0]
    )

    # The videos API lists it beside the org's uploads, filtered by kind and room.
    (listed,) = _videos(org, lambda_context, kind="recording")
    assert listed["videoId"] == video_id and listed["kind"] == "recording"
    assert listed["roomId"] == "bio-1" and listed["egressId"] == egress_id and listed["status"] == "completed"
    assert [v["videoId"] for v in _videos(org, lambda_context)] == [video_id]
    assert _videos(org, lambda_context, kind="upload") == []
    assert [v["videoId"] for v in _videos(org, lambda_context, kind="recording", roomId="bio-1")] == [
        video_id
    ]
    assert _videos(org, lambda_context, roomId="bio-2") == []
    bad = call(
        cdn.handler,
        api_event("cdn/list_videos.json", headers=org.headers, query={"kind": "video"}),
        lambda_context,
    )
    assert bad.status == 400 and bad.body["error"] == "VALIDATION_ERROR"

    # Another org sees none of it: not listed, and its ids are 404 everywhere.
    assert (
        _videos(other_org, lambda_context, kind="recording") == []
        and _videos(other_org, lambda_context) == []
    )
    for case, suffix in (("get_video", ""), ("video_url", "/url"), ("video_status", "/status")):
        foreign = call(
            cdn.handler,
            api_event(
                f"cdn/{case}.json",
                headers=other_org.headers,
                path_params={"video_id": video_id},
                path=f"/v1/cdn/videos/{video_id}{suffix}",
            ),
            lambda_context,
        )
        assert foreign.status == 404 and video_id not in str(foreign.body), case
    for name, params in (("recording_list", {}), ("recording_download", {"egress_id": egress_id})):
        foreign = call(
            handler, rooms_event(name, other_org.headers, room_id="bio-1", **params), lambda_context
        )
        assert foreign.status == 404 and video_id not in str(foreign.body)

    # One event per fact: the MP4 (`recording.ready`, naming the video) and the HLS (`video.ready`).
    published = [e for e in event_tap.drain() if e["type"] in ("recording.ready", "video.ready")]
    by_type = {
        t: {e["id"]: e for e in published if e["type"] == t} for t in ("recording.ready", "video.ready")
    }
    assert [len(by_type["recording.ready"]), len(by_type["video.ready"])] == [1, 1]
    (mp4,) = by_type["recording.ready"].values()
    (hls,) = by_type["video.ready"].values()
    assert (
        mp4["data"]["videoId"] == video_id
        and mp4["data"]["egressId"] == egress_id
        and mp4["data"]["size"] > 0
    )
    assert hls["data"] | {"kind": "recording", "roomId": "bio-1", "egressId": egress_id} == hls["data"]
    assert all(_of_catalogue(e) for e in published)
