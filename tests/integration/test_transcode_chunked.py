"""The long-video path in-process: a synthetic two-minute source (small resolution) is handed to
the chunked state machine, its chunks are transcoded in parallel from a presigned URL, and the join
publishes one ladder that FFmpeg plays end to end through the signed stream proxy."""

from __future__ import annotations

import json
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler

import boto3
import httpx
import pytest
from apigw_server import serve
from cdn import handler as cdn
from media_support import (
    MEDIA,
    UPLOADS,
    decode_first_frames,
    keys,
    make_video,
    s3_over_http,
    state_machine_definition,
    tap_media_events,
    use_media_env,
)
from support import load_event
from transcode import chunked, handler, models
from transcode import steps as transcode_steps
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
    assert models.ChunkJob.model_validate(sample["job"]).chunks[1] == sample["chunk"]


def test_long_source_is_chunked_transcoded_in_parallel_and_joined_into_one_ladder(
    org, machine, tmp_path, lambda_context
):
    tap = tap_media_events()
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

    # What the Map state does: one step invocation per chunk, in parallel, then the join. Here the
    # last chunk finishes first (nothing playable from the start yet), then the first one (playable
    # early: its segments alone), then the middle one.
    steps = [{"step": "chunk", "job": job, "chunk": chunk} for chunk in job["chunks"]]
    outputs = [transcode_steps.handler(steps[2], lambda_context)]
    assert not media.get_video(org.id, video.id).playable
    outputs.append(transcode_steps.handler(steps[0], lambda_context))
    early = media.get_video(org.id, video.id)
    assert (early.status, early.playable, [r.name for r in early.renditions]) == (
        "processing",
        True,
        ["360p"],
    )
    token, _ = playback.sign(org.id, video.id, 600)
    with serve(cdn.handler) as base:
        url = f"{base}/v1/cdn/stream/{video.id}/master.m3u8?token={token}"
        growing = httpx.get(f"{base}/v1/cdn/stream/{video.id}/360p/index.m3u8", params={"token": token}).text
        assert "#EXT-X-PLAYLIST-TYPE:EVENT" in growing and "#EXT-X-ENDLIST" not in growing
        assert growing.count("#EXTINF") == 10  # the first 40 s chunk's 4 s segments
        assert decode_first_frames(url, 100) == 100  # 20 s of the first chunk, played while the rest encodes
    with ThreadPoolExecutor(max_workers=1) as pool:
        outputs += list(pool.map(lambda e: transcode_steps.handler(e, lambda_context), steps[1:2]))
    assert sorted(o["index"] for o in outputs) == [0, 1, 2]
    assert max(o["progress"] for o in outputs) == 99
    assert transcode_steps.handler({"step": "join", "job": job}, lambda_context) == {
        "videoId": video.id,
        "status": "completed",
    }

    done = media.get_video(org.id, video.id)
    assert (done.status, done.progress) == ("completed", 100)
    assert video.media_prefix + "360p/index.m3u8" in keys(MEDIA, video.media_prefix)
    assert [e["type"] for e in tap.drain()] == ["video.ready"]
    with serve(cdn.handler) as base:
        url = f"{base}/v1/cdn/stream/{video.id}/master.m3u8?token={token}"
        playlist = httpx.get(f"{base}/v1/cdn/stream/{video.id}/360p/index.m3u8", params={"token": token}).text
        assert playlist.count("#EXTINF") == 30 and "#EXT-X-DISCONTINUITY" not in playlist
        # the playlist published early only grew and ended (segment URLs are signed per fetch)
        unsigned = [line.split("?")[0] for line in playlist.splitlines()]
        assert unsigned[: len(growing.splitlines())] == [line.split("?")[0] for line in growing.splitlines()]
        assert unsigned[-1] == "#EXT-X-ENDLIST"
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
    tap = tap_media_events()
    video = media.insert_video(org.id, title="Broken", size_bytes=10, content_type="video/mp4")
    claimed = media.claim(org.id, video.id, lambda_context.aws_request_id)
    src = chunked.pipeline.Probe(
        duration_s=120, width=640, height=360, fps=5, has_audio=True, format_name="", video_codec="h264"
    )
    job = chunked.chunk_job(claimed, src).model_dump()
    boto3.client("s3").put_object(Bucket=MEDIA, Key=video.media_prefix + "360p/c0000_00000.ts", Body=b"x")

    out = transcode_steps.handler(
        {"step": "fail", "job": job, "error": {"Error": "InvalidMedia", "Cause": "..."}}, lambda_context
    )

    assert out == {"videoId": video.id, "status": "failed"}
    assert media.get_video(org.id, video.id).status == "failed"
    assert keys(MEDIA, video.media_prefix) == set()
    assert [e["type"] for e in tap.drain()] == ["video.failed"]


def test_early_playlist_only_grows_when_chunk_publishers_race(org, machine, monkeypatch):
    import threading

    from verriflo import db, objects

    video = media.insert_video(org.id, title="Race", size_bytes=10, content_type="video/mp4")
    claimed = media.claim(org.id, video.id, "worker")
    src = chunked.pipeline.Probe(
        duration_s=160, width=640, height=360, fps=5, has_audio=True, format_name="", video_codec="h264"
    )
    job = chunked.chunk_job(claimed, src)
    assert len(job.chunks) == 4
    media.set_chunks(claimed, 4)
    s3 = boto3.client("s3")
    for i in range(4):
        body = "".join(f"#EXTINF:4.000000,\nc{i:04d}_{n:05d}.ts\n" for n in range(2))
        s3.put_object(
            Bucket=MEDIA,
            Key=f"{video.media_prefix}360p/c{i:04d}.m3u8",
            Body=f"#EXTM3U\n{body}#EXT-X-ENDLIST\n",
        )
    # The first publisher's upload (one chunk) is slow and lands after the second's (three chunks).
    longer_out = threading.Event()
    real = objects.put_text

    def slow_put(bucket, key, text):
        if text.count("#EXTINF") == 2:
            assert longer_out.wait(30)
        real(bucket, key, text)
        if text.count("#EXTINF") == 6:
            longer_out.set()

    monkeypatch.setattr(objects, "put_text", slow_put)

    def finished(*indexes: int) -> None:
        db.collection(media.VIDEOS).update_one({"_id": video.id}, {"$set": {"chunksDone": list(indexes)}})

    finished(0)
    first = threading.Thread(target=chunked._publish_leading_chunks, args=(job, claimed))
    first.start()
    deadline = time.monotonic() + 30
    while media.early_chunks(claimed) < 1:
        assert time.monotonic() < deadline, "the first publisher never recorded its chunk"
        time.sleep(0.01)
    finished(0, 2, 1)
    chunked._publish_leading_chunks(job, claimed)
    first.join(30)

    text = s3.get_object(Bucket=MEDIA, Key=f"{video.media_prefix}360p/index.m3u8")["Body"].read().decode()
    assert text.count("#EXTINF") == 6 and "#EXT-X-PLAYLIST-TYPE:EVENT" in text and "ENDLIST" not in text
    now = media.get_video(org.id, video.id)
    assert (now.playable, [r.name for r in now.renditions], media.early_chunks(claimed)) == (
        True,
        ["360p"],
        3,
    )
    master = s3.get_object(Bucket=MEDIA, Key=f"{video.media_prefix}master.m3u8")["Body"].read().decode()
    assert "360p/index.m3u8" in master


class _CutOnce(BaseHTTPRequestHandler):
    """Serves one file with byte ranges, as S3 does for a presigned GET, and cuts the connection off
    mid-body once: on request number `cut_at`, after `cut_after` bytes."""

    data: bytes = b""
    cut_at, cut_after = 3, 100_000
    ranges: list[tuple[int, int]]

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        import re
        import socket

        asked = re.fullmatch(r"bytes=(\d+)-(\d*)", self.headers.get("Range", ""))
        start = int(asked.group(1)) if asked else 0
        end = int(asked.group(2)) if asked and asked.group(2) else len(self.data) - 1
        self.ranges.append((start, end))
        body = self.data[start : end + 1]
        self.send_response(206 if asked else 200)
        self.send_header("Accept-Ranges", "bytes")
        if asked:
            self.send_header("Content-Range", f"bytes {start}-{end}/{len(self.data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if len(self.ranges) == self.cut_at:
            self.wfile.write(body[: self.cut_after])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
            return
        self.wfile.write(body)


def test_a_chunk_whose_ranged_read_is_cut_off_resumes_where_it_stopped(tmp_path):
    """FFmpeg reads a chunk's source over HTTP; a GET cut off mid-body (S3 and LocalStack both do it
    now and then) used to end the chunk early and fail the video as truncated."""
    import threading
    from http.server import ThreadingHTTPServer

    from transcode import pipeline

    clip = make_video(tmp_path / "source.mp4", width=160, height=90, seconds=20, rate=10)
    handler_class = type("CutOnce", (_CutOnce,), {"data": clip.read_bytes(), "ranges": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_class)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/source.mp4?X-Amz-Signature=x"
    try:
        src = pipeline.probe(url)
        handler_class.ranges.clear()  # cut the encode's reads, not the probe's
        rungs = pipeline.plan_ladder(src)
        encoded = pipeline.encode(url, tmp_path / "out", rungs, src, start_s=5, length_s=10)
    finally:
        server.shutdown()
        server.server_close()

    assert abs(encoded - 10) < 0.5
    cut_start = handler_class.ranges[_CutOnce.cut_at - 1][0]
    # the read after the cut asked for the rest, from the byte where the cut left off
    assert handler_class.ranges[_CutOnce.cut_at][0] == cut_start + _CutOnce.cut_after
