"""The operators' `verriflo video upload`: through the API over real HTTP (in-process gateway, moto
S3 over HTTP), a progress bar while uploading and transcoding, then the signed URL, which plays."""

from __future__ import annotations

import io
import subprocess
import threading
import time

import boto3
import pytest
from apigw_server import serve
from cdn import handler as cdn
from media_support import UPLOADS, make_video, s3_over_http, use_media_env
from transcode import handler as transcode
from verriflo import aws, ledger
from verriflo.media import SOURCE_KEY
from verriflo_tools import cli, video_cli


@pytest.fixture(scope="module")
def s3_http():
    with s3_over_http() as url:
        yield url


@pytest.fixture(autouse=True)
def media_env(stores, monkeypatch, s3_http):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_http)
    aws.reset_clients()
    use_media_env(monkeypatch)


def s3_trigger(ctx, stop: threading.Event) -> threading.Thread:
    """What S3's ObjectCreated notification does: invoke the transcoder for each new source."""

    def watch() -> None:
        seen = set()
        while not stop.wait(0.1):
            for obj in boto3.client("s3").list_objects_v2(Bucket=UPLOADS).get("Contents", []):
                if obj["Key"] not in seen and SOURCE_KEY.fullmatch(obj["Key"]):
                    seen.add(obj["Key"])
                    transcode.handler(
                        {
                            "Records": [
                                {
                                    "s3": {
                                        "bucket": {"name": UPLOADS},
                                        "object": {"key": obj["Key"], "size": obj["Size"]},
                                    }
                                }
                            ]
                        },
                        ctx,
                    )

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_video_upload_shows_progress_waits_until_playable_and_prints_a_url_that_plays(
    org, tmp_path, lambda_context
):
    ledger.grant(ledger.UsageEvent(entry_id="g", org_id=org.id, service="grant", credits=100))
    path = make_video(tmp_path / "lesson.mp4", width=640, height=360, seconds=2)
    out, err, stop = io.StringIO(), io.StringIO(), threading.Event()
    trigger = s3_trigger(lambda_context, stop)
    try:
        with serve(cdn.handler) as base:
            started = time.monotonic()
            result = video_cli.upload(
                path, api_url=base, key=org.key, poll_s=0.1, timeout_s=120, out=out, err=err
            )
            assert time.monotonic() - started < 120
            printed = out.getvalue().splitlines()
            assert printed[0] == f"video {result['videoId']}"
            assert printed[-1] == result["url"] and "/master.m3u8?token=" in result["url"]
            assert (
                "uploading" in err.getvalue()
                and "100.0%" in err.getvalue()
                and "transcoding" in err.getvalue()
            )
            played = subprocess.run(
                [
                    "ffprobe",
                    "-v",
                    "error",
                    "-show_entries",
                    "format=duration",
                    "-of",
                    "csv=p=0",
                    result["url"],
                ],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert abs(float(played.stdout) - 2) < 0.5, played.stderr
    finally:
        stop.set()
        trigger.join()


def test_video_upload_reports_the_api_error(org, tmp_path):
    path = make_video(tmp_path / "lesson.mp4", width=320, height=180, seconds=1)
    with serve(cdn.handler) as base, pytest.raises(video_cli.ApiError, match="Insufficient credits"):
        video_cli.upload(path, api_url=base, key=org.key, out=io.StringIO(), err=io.StringIO())


def test_cli_grammar_has_video_upload():
    args = cli.parser().parse_args(
        ["video", "upload", "a.mp4", "--api-url", "http://x", "--key", "k", "--no-wait"]
    )
    assert args.func is video_cli.run and args.no_wait and args.file == "a.mp4"
