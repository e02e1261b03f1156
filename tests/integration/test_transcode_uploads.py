"""The transcoder end to end in-process: an S3 ObjectCreated event for a real (tiny) upload in moto
S3, the real MongoDB-wire server, real FFmpeg. Good uploads become a published HLS ladder; bad
ones fail cleanly; duplicates, crashes and foreign keys are handled."""

from __future__ import annotations

import copy
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import boto3
import pytest
from media_support import MEDIA, UPLOADS, keys, make_video, tap_media_events, truncate, use_media_env
from support import load_event
from transcode import handler, publish, sweep
from transcode.reconcile import reconcile_pending
from verriflo import ledger, media


@pytest.fixture(autouse=True)
def media_env(stores, monkeypatch):
    use_media_env(monkeypatch)


@pytest.fixture
def tap():
    return tap_media_events()


def upload(org_id: str, path: Path, *, declared: int | None = None, kind: str = "video") -> media.Video:
    """Create the video record and put the file where its presigned upload would have put it."""
    size = path.stat().st_size
    video = media.insert_video(
        org_id,
        title=path.name,
        size_bytes=declared if declared is not None else size,
        content_type="video/mp4",
        kind=kind,
        room_id="room-1" if kind == "recording" else None,
        bucket=UPLOADS,
    )
    boto3.client("s3").upload_file(str(path), UPLOADS, video.source_key)
    return video


def s3_event(key: str, bucket: str = UPLOADS, size: int | None = None) -> dict:
    event = copy.deepcopy(load_event("transcode/s3_object_created.json"))
    obj = event["Records"][0]["s3"]
    obj["bucket"]["name"] = bucket
    obj["bucket"]["arn"] = f"arn:aws:s3:::{bucket}"
    # S3 sends keys URL-encoded, as in AWS
    obj["object"]["key"] = key.replace("/", "%2F") if "%" not in key else key
    if size is not None:
        obj["object"]["size"] = size
    return event


def run(event: dict, lambda_context) -> list[dict]:
    return handler.handler(event, lambda_context)["results"]


def test_upload_becomes_hls_ladder_with_poster_progress_usage_and_ready_event(
    org, tap, tmp_path, lambda_context
):
    ledger.grant(ledger.UsageEvent(entry_id="g1", org_id=org.id, service="grant", credits=100))
    video = upload(org.id, make_video(tmp_path / "a.mp4", width=960, height=540, seconds=5))

    results = run(s3_event(video.source_key, size=video.size_bytes), lambda_context)

    assert results == [{"videoId": video.id, "outcome": "completed", "message": ""}]
    done = media.get_video(org.id, video.id)
    assert (done.status, done.progress, done.playable) == ("completed", 100, True)
    assert [r.name for r in done.renditions] == ["360p", "540p"]  # never above the 540p source
    assert (done.width, done.height) == (960, 540) and 4.5 < done.duration_s < 5.5
    stored = keys(MEDIA, video.media_prefix)
    prefix = video.media_prefix
    assert {
        prefix + "master.m3u8",
        prefix + "poster.jpg",
        prefix + "360p/index.m3u8",
        prefix + "540p/index.m3u8",
    } <= stored
    assert len([k for k in stored if k.endswith(".ts")]) >= 4 and len(done.thumbnail_keys) == 4
    master = boto3.client("s3").get_object(Bucket=MEDIA, Key=prefix + "master.m3u8")["Body"].read().decode()
    assert "RESOLUTION=640x360" in master and "RESOLUTION=960x540" in master
    assert master.index("360p/index.m3u8") < master.index("540p/index.m3u8")
    # metered once, in transcoded minutes
    assert ledger.balance_milli(org.id) == ledger.to_milli(100) - ledger.to_milli(
        Decimal("0.2") * Decimal(str(round(done.duration_s / 60, 4)))
    )
    published = tap.drain()
    assert [e["type"] for e in published] == ["video.ready"]
    assert published[0]["orgId"] == org.id and published[0]["data"]["videoId"] == video.id


def test_lowest_rendition_is_published_and_playable_before_the_rest_of_the_ladder(
    org, tmp_path, monkeypatch, lambda_context
):
    video = upload(org.id, make_video(tmp_path / "a.mp4", width=960, height=540, seconds=3))
    seen = {}
    real = media.publish_renditions

    def spy(v, renditions, poster, thumbs):
        seen["stored"] = keys(MEDIA, v.media_prefix)
        seen["master"] = (
            boto3.client("s3")
            .get_object(Bucket=MEDIA, Key=v.media_prefix + "master.m3u8")["Body"]
            .read()
            .decode()
        )
        seen["renditions"] = [r.name for r in renditions]
        return real(v, renditions, poster, thumbs)

    monkeypatch.setattr(media, "publish_renditions", spy)
    run(s3_event(video.source_key), lambda_context)

    prefix = video.media_prefix
    assert seen["renditions"] == ["360p"]
    assert prefix + "360p/index.m3u8" in seen["stored"]
    assert prefix + "540p/index.m3u8" not in seen["stored"]
    assert "360p/index.m3u8" in seen["master"] and "540p" not in seen["master"]
    assert media.get_video(org.id, video.id).status == "completed"


def test_a_recording_is_announced_as_a_video_of_kind_recording_only(org, tap, tmp_path, lambda_context):
    """One event per fact: the transcoder's is `video.ready` (the rooms function announces the MP4
    with `recording.ready`)."""
    video = upload(org.id, make_video(tmp_path / "r.mp4", width=320, height=180, seconds=2), kind="recording")

    run(s3_event(video.source_key), lambda_context)

    (published,) = tap.drain()
    assert published["type"] == "video.ready"
    assert published["data"]["kind"] == "recording" and published["data"]["roomId"] == "room-1"
    assert [r.name for r in media.get_video(org.id, video.id).renditions] == ["180p"]


@pytest.mark.parametrize("case", ["text", "zero_bytes", "truncated_mp4", "truncated_ts", "still_image"])
def test_bad_upload_fails_with_a_clear_message_and_nothing_published(
    org, tap, tmp_path, lambda_context, case
):
    path = tmp_path / "bad"
    if case == "text":
        path.write_text("this is a lesson plan, not a video\n" * 50)
    elif case == "zero_bytes":
        path.write_bytes(b"")
    elif case == "truncated_mp4":
        truncate(make_video(tmp_path / "t.mp4", seconds=4), 0.6).rename(path)
    elif case == "truncated_ts":
        truncate(make_video(tmp_path / "t.ts", seconds=12, fmt="mpegts"), 0.3).rename(path)
    else:
        import subprocess

        from media_support import ffmpeg

        subprocess.run(
            [
                ffmpeg(),
                "-v",
                "error",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=320x240",
                "-frames:v",
                "1",
                "-f",
                "image2",
                "-c:v",
                "png",
                str(tmp_path / "i.png"),
            ],
            check=True,
        )
        (tmp_path / "i.png").rename(path)
    video = upload(org.id, path)

    [result] = run(s3_event(video.source_key), lambda_context)

    failed = media.get_video(org.id, video.id)
    assert result["outcome"] == "failed" and failed.status == "failed"
    assert failed.message and failed.message == result["message"]
    assert any(
        word in failed.message for word in ("empty", "not a video", "truncated", "still image", "no video")
    )
    assert keys(MEDIA, video.media_prefix) == set()  # nothing half-published
    published = tap.drain()
    assert [e["type"] for e in published] == ["video.failed"]
    assert published[0]["data"]["message"] == failed.message


def source_exists(key: str, bucket: str = UPLOADS) -> bool:
    return boto3.client("s3").list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount", 0) > 0


def test_upload_larger_than_declared_fails_and_the_source_is_deleted(org, tmp_path, lambda_context):
    path = make_video(tmp_path / "a.mp4", width=320, height=180, seconds=2)
    video = upload(org.id, path, declared=100)

    [result] = run(s3_event(video.source_key), lambda_context)

    assert result["outcome"] == "failed" and "larger than the size given" in result["message"]
    assert not source_exists(video.source_key)
    assert media.storage_used(org.id) == 0  # neither the declared 100 bytes nor the real size
    # S3's retry of the same event finds it gone and fails it the same way, never transcoding it
    [again] = run(s3_event(video.source_key), lambda_context)
    assert again["outcome"] == "duplicate" and media.get_video(org.id, video.id).status == "failed"


def test_storage_used_is_measured_from_the_objects_not_the_declared_sizes(org, tmp_path, lambda_context):
    path = make_video(tmp_path / "a.mp4", width=320, height=180, seconds=2)
    declared = path.stat().st_size * 50
    video = upload(org.id, path, declared=declared)
    assert media.storage_used(org.id) == declared  # reserved while the upload is awaited

    [result] = run(s3_event(video.source_key), lambda_context)

    assert result["outcome"] == "completed"
    s3 = boto3.client("s3")
    outputs = sum(o["Size"] for o in s3.list_objects_v2(Bucket=MEDIA, Prefix=video.media_prefix)["Contents"])
    assert outputs > 0
    assert media.storage_used(org.id) == path.stat().st_size + outputs


def test_upload_under_a_key_no_video_owns_is_refused_and_deleted(org, tmp_path, lambda_context):
    video = upload(org.id, make_video(tmp_path / "a.mp4", width=320, height=180, seconds=2))
    media.delete_video(org.id, video.id)  # e.g. deleted before its upload arrived

    [result] = run(s3_event(video.source_key), lambda_context)

    assert result["outcome"] == "refused" and not source_exists(video.source_key)


def test_same_event_twice_transcodes_once(org, tap, tmp_path, lambda_context):
    video = upload(org.id, make_video(tmp_path / "a.mp4", width=320, height=180, seconds=2))
    event = s3_event(video.source_key)

    first = run(event, lambda_context)
    second_context = copy.copy(lambda_context)
    second_context.aws_request_id = "another-delivery"
    second = run(copy.deepcopy(event), second_context)

    assert first[0]["outcome"] == "completed" and second[0]["outcome"] == "duplicate"
    assert media.get_video(org.id, video.id).attempt == 1
    assert tap.types() == ["video.ready"]


def test_duplicate_event_while_processing_is_ignored_until_the_lease_runs_out(org, tmp_path, monkeypatch):
    video = upload(org.id, make_video(tmp_path / "a.mp4", width=320, height=180, seconds=2))
    assert media.claim(org.id, video.id, "first-invocation") is not None

    assert media.claim(org.id, video.id, "second-delivery") is None
    monkeypatch.setenv("TRANSCODE_LEASE_S", "30")
    media.media_settings.cache_clear()
    from verriflo import db

    db.collection(media.VIDEOS).update_one(
        {"_id": video.id}, {"$set": {"leaseUntil": media.now().replace(year=2000)}}
    )
    taken = media.claim(org.id, video.id, "second-delivery")
    assert taken is not None and taken.attempt == 2
    # the first worker's writes are fenced off now
    stale = media.Video.model_validate(taken.model_dump(by_alias=True) | {"claimedBy": "first-invocation"})
    assert media.set_progress(stale, 50) is False


def test_crash_mid_way_then_retry_starts_clean(org, tap, tmp_path, monkeypatch, lambda_context):
    video = upload(org.id, make_video(tmp_path / "a.mp4", width=960, height=540, seconds=3))
    real = publish.publish_playlists
    calls = {"n": 0}

    def crash_after_first(v, out, rungs):
        calls["n"] += 1
        if calls["n"] == 1:  # the first rendition is out; die while publishing the rest
            boto3.client("s3").put_object(
                Bucket=MEDIA, Key=v.media_prefix + "540p/seg_99999.ts", Body=b"partial"
            )
            raise RuntimeError("Lambda ran out of memory")
        return real(v, out, rungs)

    monkeypatch.setattr(publish, "publish_playlists", crash_after_first)
    with pytest.raises(RuntimeError):
        run(s3_event(video.source_key), lambda_context)
    crashed = media.get_video(org.id, video.id)
    assert crashed.status == "processing" and crashed.playable

    # Lambda's async retry: same request id, so the same claimant, which takes the video again.
    results = run(s3_event(video.source_key), lambda_context)

    assert results[0]["outcome"] == "completed"
    done = media.get_video(org.id, video.id)
    assert (done.status, done.attempt) == ("completed", 2)
    assert video.media_prefix + "540p/seg_99999.ts" not in keys(MEDIA, video.media_prefix)
    assert tap.types() == ["video.ready"]


@pytest.mark.parametrize(
    "key",
    [
        "{org}/../{other}/vid_0123456789abcdef01234567/source",
        "{org}/vid_0123456789abcdef0123456%20/source",
        "{org}/{vid}/source/../../x",
        "{org}/{vid}/source.mp4",
        "{org}/{vid}/s\u043eurce",
        "..%2F..%2Fetc%2Fpasswd",
    ],
)
def test_keys_with_dots_or_odd_characters_are_refused(org, other_org, tmp_path, lambda_context, key):
    video = upload(org.id, make_video(tmp_path / "a.mp4", width=320, height=180, seconds=1))
    key = key.format(org=org.id, other=other_org.id, vid=video.id)

    [result] = run(s3_event(key), lambda_context)

    assert result["outcome"] == "refused"
    assert media.get_video(org.id, video.id).status == "pending"


def test_key_under_another_orgs_prefix_is_refused(org, other_org, tmp_path, lambda_context):
    video = upload(org.id, make_video(tmp_path / "a.mp4", width=320, height=180, seconds=1))
    forged = f"{other_org.id}/{video.id}/source"
    boto3.client("s3").upload_file(str(tmp_path / "a.mp4"), UPLOADS, forged)

    [result] = run(s3_event(forged), lambda_context)

    assert result["outcome"] == "refused" and "organisation" in result["message"]
    assert media.get_video(org.id, video.id).status == "pending"
    assert keys(MEDIA, f"{other_org.id}/") == set()


def test_transcode_that_died_for_good_is_failed_by_the_sweep(org, tap, tmp_path, lambda_context):
    from verriflo import db

    video = upload(org.id, make_video(tmp_path / "a.mp4", width=320, height=180, seconds=1))
    fresh = upload(org.id, make_video(tmp_path / "b.mp4", width=320, height=180, seconds=1))
    claimed = media.claim(org.id, video.id, "crashed-every-retry")
    media.claim(org.id, fresh.id, "still-working")
    boto3.client("s3").put_object(Bucket=MEDIA, Key=video.media_prefix + "360p/seg_00000.ts", Body=b"x")
    db.collection(media.VIDEOS).update_one(
        {"_id": claimed.id}, {"$set": {"leaseUntil": media.now() - timedelta(minutes=30)}}
    )

    out = sweep.handler(load_event("transcode/retention_schedule.json"), lambda_context)

    assert (out["deleted"], out["stalled"]) == (0, 1)
    failed = media.get_video(org.id, video.id)
    assert failed.status == "failed" and "upload the file again" in failed.message
    assert keys(MEDIA, video.media_prefix) == set()
    assert media.get_video(org.id, fresh.id).status == "processing"
    assert tap.types() == ["video.failed"]


def test_s3_test_event_without_records_is_ignored(lambda_context):
    event = {
        "Service": "Amazon S3",
        "Event": "s3:TestEvent",
        "Bucket": UPLOADS,
        "RequestId": "x",
        "HostId": "y",
    }
    assert handler.handler(event, lambda_context) == {"results": []}


# --- reconciliation: S3 triggers that were lost or spent every retry ----------------------------------


def in_process(lambda_context, started: list[str]):
    """A dispatch that runs the transcoder here on the event the sweep would send it."""
    from transcode import redispatch

    def dispatch(bucket: str, key: str) -> None:
        started.append(key)
        handler.handler(redispatch.s3_event(bucket, key), lambda_context)

    return dispatch


def test_pending_video_whose_trigger_never_ran_is_transcoded_by_the_sweep(org, tap, tmp_path, lambda_context):
    video = upload(org.id, make_video(tmp_path / "a.mp4", width=320, height=180, seconds=1))
    started: list[str] = []
    dispatch = in_process(lambda_context, started)

    # not before the trigger had its time (it may still be retrying)
    early = reconcile_pending(dispatch, at=video.created_at + timedelta(minutes=14))
    assert early == {"dispatched": 0, "failed": 0, "waiting": 0} and started == []

    later = reconcile_pending(dispatch, at=video.created_at + timedelta(minutes=16))

    assert later == {"dispatched": 1, "failed": 0, "waiting": 0} and started == [video.source_key]
    assert media.get_video(org.id, video.id).status == "completed"
    assert tap.types() == ["video.ready"]


def test_upload_that_never_came_is_failed_once_its_upload_url_expired(org, tap, lambda_context):
    created = media.insert_video(org.id, title="never sent", size_bytes=1000, content_type="video/mp4")
    video = media.get_video(org.id, created.id)  # its times as stored (milliseconds)
    ttl = timedelta(seconds=media.media_settings().upload_url_ttl_s)
    grace = timedelta(seconds=media.media_settings().reconcile_after_s)
    started: list[str] = []

    within = reconcile_pending(in_process(lambda_context, started), at=video.created_at + ttl + grace)
    assert within["waiting"] == 1 and media.get_video(org.id, video.id).status == "pending"

    after = reconcile_pending(
        in_process(lambda_context, started), at=video.created_at + ttl + grace + timedelta(seconds=1)
    )

    assert after["failed"] == 1 and started == []
    failed = media.get_video(org.id, video.id)
    assert failed.status == "failed" and "never arrived" in failed.message
    assert tap.types() == ["video.failed"]
    # a second sweep finds nothing left to settle and publishes nothing
    assert reconcile_pending(in_process(lambda_context, started), at=video.created_at + 2 * ttl) == {
        "dispatched": 0,
        "failed": 0,
        "waiting": 0,
    }
    assert tap.types() == []


def test_a_source_the_transcoder_never_takes_is_started_a_few_times_then_failed(org, tap, tmp_path):
    video = upload(org.id, make_video(tmp_path / "a.mp4", width=320, height=180, seconds=1))
    starts: list[str] = []

    def lost(bucket: str, key: str) -> None:  # every start dies before the transcoder claims it
        starts.append(key)

    outcomes = [reconcile_pending(lost, at=video.created_at + timedelta(minutes=16 * i)) for i in range(1, 7)]

    most = media.media_settings().max_redispatches
    assert len(starts) == most
    assert [o["dispatched"] for o in outcomes[:most]] == [1] * most and outcomes[most]["failed"] == 1
    failed = media.get_video(org.id, video.id)
    assert failed.status == "failed" and "upload it again" in failed.message
    assert tap.types() == ["video.failed"]


def test_a_repeated_sweep_does_not_start_the_same_video_twice(org, tmp_path):
    video = upload(org.id, make_video(tmp_path / "a.mp4", width=320, height=180, seconds=1))
    starts: list[str] = []
    at = video.created_at + timedelta(minutes=16)

    for _ in range(3):
        reconcile_pending(lambda bucket, key: starts.append(key), at=at)

    assert starts == [video.source_key]


def test_failed_invocations_from_the_on_failure_queue_are_transcoded_and_removed(
    org, tap, tmp_path, lambda_context, monkeypatch
):
    """A Lambda on-failure destination record (every retry spent) names the upload: the sweep starts
    the transcode again at once and deletes the message."""
    import json

    from transcode import redispatch

    sqs = boto3.client("sqs")
    url = sqs.create_queue(QueueName="transcode-failed")["QueueUrl"]
    monkeypatch.setenv("TRANSCODE_FAILED_QUEUE_URL", url)
    media.media_settings.cache_clear()
    video = upload(org.id, make_video(tmp_path / "a.mp4", width=320, height=180, seconds=1))
    record = {
        "version": "1.0",
        "requestContext": {"requestId": "r-1", "condition": "RetriesExhausted", "approximateInvokeCount": 3},
        "requestPayload": s3_event(video.source_key),
        "responsePayload": {"errorMessage": "Task timed out after 900.00 seconds"},
    }
    sqs.send_message(QueueUrl=url, MessageBody=json.dumps(record))
    sqs.send_message(QueueUrl=url, MessageBody="not json")
    started: list[str] = []
    monkeypatch.setattr(redispatch, "invoke_transcode", in_process(lambda_context, started))

    out = sweep.handler(load_event("transcode/retention_schedule.json"), lambda_context)

    assert out["failedInvocations"] == 2 and started == [video.source_key]
    assert media.get_video(org.id, video.id).status == "completed"
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert (
        int(attributes["ApproximateNumberOfMessages"])
        + int(attributes["ApproximateNumberOfMessagesNotVisible"])
        == 0
    )
