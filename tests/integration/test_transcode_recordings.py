"""Recordings: an Egress file landing in the recordings bucket takes the same transcode path,
announces `video.ready` (kind `recording`), is listed per room and org, and is deleted when its
retention ends."""

from __future__ import annotations

import uuid
from datetime import timedelta

import boto3
import pytest
from media_support import MEDIA, RECORDINGS, keys, make_video, tap_media_events, use_media_env
from support import load_event
from transcode import handler, sweep
from verriflo import media
from verriflo.errors import NotFound


@pytest.fixture(autouse=True)
def media_env(stores, monkeypatch):
    use_media_env(monkeypatch)


def egress_file(org_id: str, room_id: str, tmp_path, *, ours: bool = True) -> str:
    """Put a recording where functions/rooms tells Egress to write it; returns its key. `ours`: the
    rooms API started that recording (its record names this bucket and key), as it does for its own."""
    from rooms import recording_store, records

    key = f"recordings/{org_id}/{room_id}/{uuid.uuid4().hex}.mp4"
    if ours:
        record = records.EgressRecording(
            id="EG_" + uuid.uuid4().hex[:12],
            org_id=org_id,
            room_id=room_id,
            status="EGRESS_ACTIVE",
            layout="grid",
            preset="H264_1080P_30",
            bucket=RECORDINGS,
            key=key,
            started_at=media.now(),
        )
        recording_store.insert_recording(record)
    path = make_video(tmp_path / "rec.mp4", width=320, height=180, seconds=2)
    boto3.client("s3").upload_file(str(path), RECORDINGS, key)
    return key


def arrive(key: str, ctx) -> dict:
    event = load_event("transcode/s3_object_created.json")
    event["Records"][0]["s3"]["bucket"]["name"] = RECORDINGS
    event["Records"][0]["s3"]["object"]["key"] = key.replace("/", "%2F")
    return handler.handler(event, ctx)["results"][0]


def test_egress_recording_is_transcoded_and_announced_with_its_room(org, tmp_path, lambda_context):
    tap = tap_media_events()
    key = egress_file(org.id, "math-101", tmp_path)

    result = arrive(key, lambda_context)

    assert result["outcome"] == "completed"
    [recording] = media.list_recordings(org.id, "math-101")
    assert recording.id == result["videoId"] and recording.status == "completed"
    assert recording.expires_at is not None
    (published,) = tap.drain()  # the MP4's `recording.ready` is the rooms function's
    assert published["type"] == "video.ready" and published["data"]["kind"] == "recording"
    assert published["data"]["roomId"] == "math-101" and published["data"]["egressId"].startswith("EG_")
    # the same file arriving twice is one recording, transcoded once
    assert arrive(key, lambda_context)["outcome"] == "duplicate"
    assert len(media.list_recordings(org.id, "math-101")) == 1


def test_recordings_are_scoped_to_their_org(org, other_org, tmp_path, lambda_context):
    result = arrive(egress_file(org.id, "math-101", tmp_path), lambda_context)

    assert media.list_recordings(other_org.id, "math-101") == []
    with pytest.raises(NotFound):
        media.get_recording(other_org.id, result["videoId"])
    assert media.get_recording(org.id, result["videoId"]).room_id == "math-101"


def test_a_recording_our_api_did_not_start_is_refused(org, other_org, tmp_path, lambda_context):
    """An egress told (by whoever holds LiveKit's project-wide roomRecord) to write under an org's
    prefix is not that org's recording; nor is our own file under another room's or org's prefix."""
    stray = egress_file(org.id, "math-101", tmp_path, ours=False)
    assert arrive(stray, lambda_context)["outcome"] == "refused"
    ours = egress_file(org.id, "math-101", tmp_path)
    for org_id, room_id in ((other_org.id, "math-101"), (org.id, "math-102")):
        moved = f"recordings/{org_id}/{room_id}/{ours.rsplit('/', 1)[1]}"
        boto3.client("s3").copy_object(
            Bucket=RECORDINGS, Key=moved, CopySource={"Bucket": RECORDINGS, "Key": ours}
        )
        assert arrive(moved, lambda_context)["outcome"] == "refused"
    assert (
        media.list_recordings(org.id, "math-101") == []
        and media.list_recordings(other_org.id, "math-101") == []
    )
    assert arrive(ours, lambda_context)["outcome"] == "completed"


def test_recording_key_of_an_unknown_org_is_refused(tmp_path, lambda_context):
    key = egress_file("org_" + "0" * 24, "math-101", tmp_path)

    assert arrive(key, lambda_context)["outcome"] == "refused"


def test_retention_deletes_recordings_after_class_and_keeps_newer_ones(org, tmp_path, lambda_context):
    old = arrive(egress_file(org.id, "math-101", tmp_path), lambda_context)["videoId"]
    new = arrive(egress_file(org.id, "math-102", tmp_path), lambda_context)["videoId"]
    # class math-101 ended 7 hours ago: past the default 6-hour retention
    assert media.class_ended(org.id, "math-101", media.now() - timedelta(hours=7)) == 1
    old_recording = media.get_recording(org.id, old)

    out = sweep.handler(load_event("transcode/retention_schedule.json"), lambda_context)

    assert (out["deleted"], out["stalled"]) == (1, 0)
    with pytest.raises(NotFound):
        media.get_recording(org.id, old)
    assert keys(MEDIA, old_recording.media_prefix) == set()
    assert keys(RECORDINGS, old_recording.source_key) == set()
    kept = media.get_recording(org.id, new)
    assert kept.status == "completed" and keys(MEDIA, kept.media_prefix)


def test_retention_is_configurable(org, monkeypatch):
    monkeypatch.setenv("RECORDING_RETENTION_HOURS", "1")
    media.media_settings.cache_clear()

    recording = media.register_recording(org.id, "math-101")

    assert timedelta(minutes=59) < recording.expires_at - recording.created_at <= timedelta(hours=1)


def open_room(org_id: str, room_id: str) -> None:
    """The room record functions/rooms keeps for a class that is running."""
    from rooms import records, store

    store.insert_room(
        records.Room(
            org_id=org_id,
            room_id=room_id,
            title=room_id,
            lk_name=f"{org_id}.{room_id}",
            sid="RM_" + uuid.uuid4().hex[:12],
            created_at=media.now(),
        )
    )


def end_class(org_id: str, room_id: str, ended_at) -> None:
    """What functions/rooms does when a class ends (rooms.lifecycle.class_ended after store.end_room)."""
    from rooms import lifecycle, store

    assert store.end_room(org_id, room_id, ended_at) is not None
    lifecycle.class_ended(org_id, room_id, ended_at)


def ms_now():
    """Now, to MongoDB's (millisecond) precision: times read back compare equal."""
    at = media.now()
    return at.replace(microsecond=at.microsecond // 1000 * 1000)


def sweep_at(monkeypatch, moment, lambda_context) -> dict:
    monkeypatch.setattr(media, "now", lambda: moment)
    try:
        return sweep.handler(load_event("transcode/retention_schedule.json"), lambda_context)
    finally:
        monkeypatch.undo()


def test_recording_of_a_running_class_is_kept_until_retention_after_the_class_ends(
    org, tmp_path, lambda_context, monkeypatch
):
    open_room(org.id, "all-day")
    arrived = ms_now()
    rec = arrive(egress_file(org.id, "all-day", tmp_path), lambda_context)["videoId"]
    assert media.get_recording(org.id, rec).expires_at is None  # no clock runs while the class does

    # a whole day later the class is still running: nothing is deleted
    assert sweep_at(monkeypatch, arrived + timedelta(hours=30), lambda_context)["deleted"] == 0
    assert media.get_recording(org.id, rec).status == "completed"

    ended = arrived + timedelta(hours=30)
    end_class(org.id, "all-day", ended)
    assert media.get_recording(org.id, rec).expires_at == ended + timedelta(hours=6)
    assert sweep_at(monkeypatch, ended + timedelta(hours=5, minutes=59), lambda_context)["deleted"] == 0
    assert sweep_at(monkeypatch, ended + timedelta(hours=6), lambda_context)["deleted"] == 1
    with pytest.raises(NotFound):
        media.get_recording(org.id, rec)


def test_recording_arriving_after_the_class_ended_expires_from_the_end_of_class(
    org, tmp_path, lambda_context
):
    open_room(org.id, "math-101")
    ended = ms_now() - timedelta(hours=2)
    end_class(org.id, "math-101", ended)

    rec = arrive(egress_file(org.id, "math-101", tmp_path), lambda_context)["videoId"]

    assert media.get_recording(org.id, rec).expires_at == ended + timedelta(hours=6)


def test_an_expiry_set_while_the_room_is_open_never_deletes_the_recording(
    org, tmp_path, lambda_context, monkeypatch
):
    """A record from when retention counted from the file's arrival: the sweep keeps it while its
    class runs and drops the stale expiry; the end of class sets the real one."""
    open_room(org.id, "math-101")
    rec = arrive(egress_file(org.id, "math-101", tmp_path), lambda_context)["videoId"]
    stale = media.now() - timedelta(hours=1)
    media.db.collection(media.VIDEOS).update_one({"_id": rec}, {"$set": {"expiresAt": stale}})

    assert sweep_at(monkeypatch, media.now(), lambda_context)["deleted"] == 0

    assert media.get_recording(org.id, rec).expires_at is None
    ended = ms_now()
    end_class(org.id, "math-101", ended)
    assert media.get_recording(org.id, rec).expires_at == ended + timedelta(hours=6)


def test_class_ending_between_the_room_look_up_and_the_insert_still_starts_the_clock(
    org, tmp_path, lambda_context, monkeypatch
):
    open_room(org.id, "math-101")
    ended = ms_now()
    real = media._room_retention_end
    calls = []

    def class_ends_after_first_look(org_id, room_id, fallback):
        found = real(org_id, room_id, fallback)
        if not calls:
            end_class(org.id, "math-101", ended)  # its update finds no recording record yet
        calls.append(found)
        return found

    monkeypatch.setattr(media, "_room_retention_end", class_ends_after_first_look)
    rec = arrive(egress_file(org.id, "math-101", tmp_path), lambda_context)["videoId"]

    assert calls[0] is None
    assert media.get_recording(org.id, rec).expires_at == ended + timedelta(hours=6)
