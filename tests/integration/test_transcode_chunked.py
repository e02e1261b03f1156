"""The long-video path in-process: a synthetic two-minute source (small resolution) is handed to
the chunked state machine, its chunks are transcoded in parallel from a presigned URL, and the join
publishes one ladder that FFmpeg plays end to end through the signed stream proxy."""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor

import boto3
import httpx
import pytest
from apigw_server import serve
from cdn import handler as cdn
from media_support import (
    MEDIA,
    UPLOADS,
    keys,
    make_video,
    s3_over_http,
    state_machine_definition,
    tap_events,
    use_media_env,
)
from support import load_event
from transcode import handler, logic
from verriflo import aws, media, playback

STEP_ARN = "arn:aws:lambda:us-east-1:123456789012:function:verriflo-transcode-step"


@pytest.fixture(scope="module")
def s3_http():
    with s3_over_http() as url:
        yield url


@pytest.fixture
def machine(stores, monkeypatch, s3_http):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_http)
    aws.reset_clients()
    use_media_env(monkeypatch)
    sfn = boto3.client("stepfunctions")
    arn = sfn.create_state_machine(
        name="verriflo-chunked",
        definition=state_machine_definition(STEP_ARN),
        roleArn="arn:aws:iam::123456789012:role/sfn",
    )["stateMachineArn"]
    monkeypatch.setenv("TRANSCODE_STATE_MACHINE_ARN", arn)
    monkeypatch.setenv("CHUNK_THRESHOLD_S", "60")
    monkeypatch.setenv("CHUNK_LENGTH_S", "40")
    media.media_settings.cache_clear()
    return arn


def test_state_machine_definition_maps_chunks_then_joins_and_cleans_up_on_failure():
    definition = json.loads(state_machine_definition(STEP_ARN))
    states = definition["States"]
    fan_out = states[definition["StartAt"]]
    assert fan_out["Type"] == "Map" and fan_out["ItemsPath"] == "$.chunks"
    assert fan_out["Parameters"]["chunk.$"] == "$$.Map.Item.Value"
    assert fan_out["Iterator"]["States"]["TranscodeChunk"]["Resource"] == STEP_ARN
    assert fan_out["Next"] == "Join" and states["Join"]["End"] is True
    assert all(s["Catch"][0]["Next"] == "CleanUp" for s in (fan_out, states["Join"]))
    assert states["CleanUp"]["Next"] == "Failed" and states["Failed"]["Type"] == "Fail"
    # the sample event of a chunk step is what the Map hands each iteration
    sample = load_event("transcode/chunk_step.json")
    assert logic.ChunkJob.model_validate(sample["job"]).chunks[1] == sample["chunk"]


def test_long_source_is_chunked_transcoded_in_parallel_and_joined_into_one_ladder(
    org, machine, tmp_path, lambda_context
):
    tap = tap_events()
    source = make_video(tmp_path / "long.mp4", width=640, height=360, seconds=120, rate=5)
    video = media.insert_video(
        org.id, title="Long class", size_bytes=source.stat().st_size, content_type="video/mp4"
    )
    boto3.client("s3").upload_file(str(source), UPLOADS, video.source_key)
    event = load_event("transcode/s3_object_created.json")
    event["Records"][0]["s3"]["bucket"]["name"] = UPLOADS
    event["Records"][0]["s3"]["object"]["key"] = video.source_key

    [result] = handler.handler(event, lambda_context)["results"]

    assert result["outcome"] == "chunked"
    [execution] = boto3.client("stepfunctions").list_executions(stateMachineArn=machine)["executions"]
    job = json.loads(
        boto3.client("stepfunctions").describe_execution(executionArn=execution["executionArn"])["input"]
    )
    assert [c["start"] for c in job["chunks"]] == [0, 40, 80] and job["rungs"][0]["name"] == "360p"

    # What the Map state does: one step invocation per chunk, in parallel, then the join.
    steps = [{"step": "chunk", "job": job, "chunk": chunk} for chunk in job["chunks"]]
    with ThreadPoolExecutor(max_workers=3) as pool:
        outputs = list(pool.map(lambda e: handler.step(e, lambda_context), steps))
    assert sorted(o["index"] for o in outputs) == [0, 1, 2]
    assert max(o["progress"] for o in outputs) == 99
    assert handler.step({"step": "join", "job": job}, lambda_context) == {
        "videoId": video.id,
        "status": "completed",
    }

    done = media.get_video(org.id, video.id)
    assert (done.status, done.progress) == ("completed", 100)
    assert video.media_prefix + "360p/index.m3u8" in keys(MEDIA, video.media_prefix)
    assert [e["type"] for e in tap.drain()] == ["video.ready"]
    token, _ = playback.sign(org.id, video.id, 600)
    with serve(cdn.handler) as base:
        url = f"{base}/v1/cdn/stream/{video.id}/master.m3u8?token={token}"
        playlist = httpx.get(f"{base}/v1/cdn/stream/{video.id}/360p/index.m3u8", params={"token": token}).text
        assert playlist.count("#EXTINF") == 30 and "#EXT-X-DISCONTINUITY" not in playlist
        probe = subprocess.run(
            ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", url],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert abs(float(probe.stdout.strip()) - 120) < 1.0, probe.stderr
        decoded = subprocess.run(
            ["ffmpeg", "-v", "error", "-i", url, "-map", "0:v:0", "-f", "null", "-"],
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert decoded.returncode == 0 and decoded.stderr == ""


def test_failed_chunk_cleans_up_and_fails_the_video(org, machine, tmp_path, lambda_context):
    tap = tap_events()
    video = media.insert_video(org.id, title="Broken", size_bytes=10, content_type="video/mp4")
    claimed = media.claim(org.id, video.id, lambda_context.aws_request_id)
    src = logic.pipeline.Probe(
        duration_s=120, width=640, height=360, fps=5, has_audio=True, format_name="", video_codec="h264"
    )
    job = logic.chunk_job(claimed, src).model_dump()
    boto3.client("s3").put_object(Bucket=MEDIA, Key=video.media_prefix + "360p/c0000_00000.ts", Body=b"x")

    out = handler.step(
        {"step": "fail", "job": job, "error": {"Error": "InvalidMedia", "Cause": "..."}}, lambda_context
    )

    assert out == {"videoId": video.id, "status": "failed"}
    assert media.get_video(org.id, video.id).status == "failed"
    assert keys(MEDIA, video.media_prefix) == set()
    assert [e["type"] for e in tap.drain()] == ["video.failed"]
