"""The CDN API in-process against the real MongoDB-wire server, S3 in moto (served over HTTP so
presigned URLs really work) and real FFmpeg: direct uploads, limits, listing, deletion, the two
API.md calls, org isolation, and the signed stream proxy played by ffprobe/ffmpeg over HTTP."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import boto3
import httpx
import pytest
from apigw_server import serve
from cdn import handler as cdn
from cdn import logic as cdn_logic
from media_support import MEDIA, UPLOADS, decode_first_frames, keys, make_video, use_media_env
from media_support import s3_over_http as s3_http
from support import api_event, call
from transcode import handler as transcode
from verriflo import aws, ledger, media, playback


@pytest.fixture(scope="module")
def s3_over_http():
    with s3_http() as url:
        yield url


@pytest.fixture(autouse=True)
def media_env(stores, monkeypatch, s3_over_http):
    # moto's server shares the in-process backend, so presigned URLs are real HTTP into the same S3
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_over_http)
    aws.reset_clients()
    use_media_env(monkeypatch)


def fund(org, credits: int = 1000) -> None:
    ledger.grant(
        ledger.UsageEvent(entry_id=f"grant-{org.id}", org_id=org.id, service="grant", credits=credits)
    )


def create(org, ctx, **body):
    payload = {"title": "Lesson 1", "sizeBytes": 1000, "contentType": "video/mp4"} | body
    return call(cdn.handler, api_event("cdn/create_video.json", headers=org.headers, body=payload), ctx)


def get(org, ctx, case: str, video_id: str, suffix: str = ""):
    return call(
        cdn.handler,
        api_event(
            f"cdn/{case}.json",
            headers=org.headers,
            path_params={"video_id": video_id},
            path=f"/v1/cdn/videos/{video_id}{suffix}",
        ),
        ctx,
    )


def uploaded_and_transcoded(org, ctx, tmp_path: Path, *, width=640, height=360, seconds=3) -> str:
    """Create a video through the API, PUT the file to its presigned URL, run the S3 trigger."""
    video_id, event = uploaded(org, ctx, tmp_path, width=width, height=height, seconds=seconds)
    assert transcode.handler(event, ctx)["results"][0]["outcome"] == "completed"
    return video_id


def uploaded(org, ctx, tmp_path: Path, *, width=640, height=360, seconds=3) -> tuple[str, dict]:
    """Create a video through the API and PUT the file to its presigned URL: the video id and the
    S3 event that starts its transcode."""
    path = make_video(tmp_path / "clip.mp4", width=width, height=height, seconds=seconds)
    created = create(org, ctx, sizeBytes=path.stat().st_size).data
    upload = created["upload"]
    signed = parse_qs(urlparse(upload["url"]).query)["X-Amz-SignedHeaders"][0].split(";")
    assert "content-length" in signed  # S3 refuses a body of any other size
    put = httpx.put(upload["url"], content=path.read_bytes(), headers=upload["headers"])
    assert put.status_code == 200, put.text
    video_id = created["video"]["videoId"]
    key = f"{org.id}/{video_id}/source"
    event = {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": UPLOADS, "arn": f"arn:aws:s3:::{UPLOADS}"},
                    "object": {
                        "key": key.replace("/", "%2F"),
                        "size": path.stat().st_size,
                        "sequencer": "01",
                    },
                },
            }
        ]
    }
    return video_id, event


# --- creating and uploading ---------------------------------------------------------------------------


def test_create_returns_presigned_put_that_accepts_the_file_and_the_upload_transcodes(
    org, lambda_context, tmp_path
):
    fund(org)
    video_id = uploaded_and_transcoded(org, lambda_context, tmp_path)

    status = get(org, lambda_context, "video_status", video_id, "/status")
    assert status.status == 200
    assert set(status.data) == {"videoId", "status", "progress", "createdAt"}
    assert (status.data["status"], status.data["progress"]) == ("completed", 100)
    assert "RateLimit-Policy" in status.headers or "X-RateLimit-Limit" in status.headers
    info = get(org, lambda_context, "get_video", video_id).data
    assert [r["name"] for r in info["renditions"]] == ["360p"] and info["playable"] is True


def test_pending_video_has_no_url_yet(org, lambda_context):
    fund(org)
    video_id = create(org, lambda_context).data["video"]["videoId"]

    reply = get(org, lambda_context, "video_url", video_id, "/url")

    assert reply.status == 200
    assert reply.data == {
        "type": None,
        "url": None,
        "posterUrl": None,
        "status": "pending",
        "message": "Waiting for the upload.",
    }
    status = get(org, lambda_context, "video_status", video_id, "/status").data
    assert (status["status"], status["progress"]) == ("pending", 0)


def test_without_credits_create_is_402_before_any_upload(org, lambda_context):
    reply = create(org, lambda_context)

    assert reply.status == 402 and reply.body["error"] == "INSUFFICIENT_CREDITS"
    assert media.list_videos(org.id) == []


def test_upload_over_the_size_limit_is_refused_before_upload(org, lambda_context, monkeypatch):
    fund(org)
    monkeypatch.setenv("MAX_UPLOAD_BYTES", "5000")
    monkeypatch.setenv("ORG_STORAGE_BYTES", "8000")
    media.media_settings.cache_clear()

    too_big = create(org, lambda_context, sizeBytes=5001)
    first = create(org, lambda_context, sizeBytes=5000)
    over_quota = create(org, lambda_context, sizeBytes=3001)

    assert too_big.status == 413 and too_big.body["error"] == "PAYLOAD_TOO_LARGE"
    assert "5000 bytes" in too_big.body["message"]
    assert first.status == 201
    assert over_quota.status == 413 and "storage limit" in over_quota.body["message"]
    assert len(media.list_videos(org.id)) == 1


def limits_cli(*argv: str) -> dict:
    """`verriflo video limits ...` as an operator runs it; its JSON answer."""
    import contextlib
    import io
    import json

    from verriflo_tools import cli

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert cli.main(["video", "limits", *argv]) == 0
    return json.loads(out.getvalue())


def test_an_orgs_own_size_limits_refuse_uploads_before_upload_and_leave_other_orgs_alone(
    org, other_org, lambda_context, monkeypatch
):
    fund(org)
    fund(other_org)
    monkeypatch.setenv("MAX_UPLOAD_BYTES", str(10 * 1024**2))
    monkeypatch.setenv("ORG_STORAGE_BYTES", str(30 * 1024**2))
    media.media_settings.cache_clear()
    assert limits_cli(org.id) == {
        "org_id": org.id,
        "max_upload_bytes": 10 * 1024**2,
        "storage_bytes": 30 * 1024**2,
        "own": [],
    }

    set_to = limits_cli(org.id, "--max-upload", "1M", "--storage", "1.5MiB")

    assert set_to["max_upload_bytes"] == 1024**2 and set_to["storage_bytes"] == 1536 * 1024
    assert set_to["own"] == ["maxUploadBytes", "storageBytes"]
    too_big = create(org, lambda_context, sizeBytes=1024**2 + 1)
    assert too_big.status == 413 and too_big.body["error"] == "PAYLOAD_TOO_LARGE"
    assert f"{1024**2} bytes" in too_big.body["message"]
    assert create(org, lambda_context, sizeBytes=1024**2).status == 201
    over_quota = create(org, lambda_context, sizeBytes=600 * 1024)
    assert over_quota.status == 413 and "storage limit" in over_quota.body["message"]
    # refused before any upload: no second record, no upload URL, nothing in the bucket
    assert len(media.list_videos(org.id)) == 1 and "upload" not in (over_quota.body.get("data") or {})
    assert keys(UPLOADS, f"{org.id}/") == set()
    # another org keeps the deployment's limits
    assert create(other_org, lambda_context, sizeBytes=5 * 1024**2).status == 201
    assert limits_cli(other_org.id)["own"] == []

    # -1 clears the org's own limit: the deployment's applies again
    assert limits_cli(org.id, "--max-upload", "-1")["max_upload_bytes"] == 10 * 1024**2
    assert create(org, lambda_context, sizeBytes=400 * 1024).status == 201


def test_limits_of_an_unknown_org_or_a_bad_size_are_refused_and_nothing_is_written(capsys):
    from verriflo import db
    from verriflo_tools import cli

    assert cli.main(["video", "limits", "org_0123456789abcdef01234567", "--max-upload", "1G"]) == 1
    assert db.collection(media.LIMITS).count_documents({}) == 0
    with pytest.raises(SystemExit):
        cli.main(["video", "limits", "org_0123456789abcdef01234567", "--max-upload", "lots"])
    assert "not a size" in capsys.readouterr().err


@pytest.mark.parametrize(
    "body",
    [{"sizeBytes": 0}, {"sizeBytes": -5}, {"title": ""}, {"contentType": "text/html"}, {"colour": "red"}],
)
def test_invalid_create_is_400_in_the_envelope(org, lambda_context, body):
    fund(org)
    reply = create(org, lambda_context, **body)

    assert (
        reply.status == 400 and reply.body["success"] is False and reply.body["error"] == "VALIDATION_ERROR"
    )
    assert media.list_videos(org.id) == []


def test_large_file_gets_a_multipart_upload_with_part_size_and_expiry(org, lambda_context, monkeypatch):
    fund(org)
    monkeypatch.setenv("MULTIPART_THRESHOLD_BYTES", str(5 * 1024**2))
    monkeypatch.setenv("MULTIPART_PART_BYTES", str(5 * 1024**2))
    media.media_settings.cache_clear()
    size = 11 * 1024**2

    created = create(org, lambda_context, sizeBytes=size)

    upload = created.data["upload"]
    assert created.status == 201 and upload["type"] == "multipart"
    assert upload["partSize"] == 5 * 1024**2 and [p["partNumber"] for p in upload["parts"]] == [1, 2, 3]
    assert upload["expiresAt"] > created.data["video"]["createdAt"]
    data = b"x" * size
    etags = []
    for part in upload["parts"]:
        start = (part["partNumber"] - 1) * upload["partSize"]
        put = httpx.put(part["url"], content=data[start : start + upload["partSize"]])
        assert put.status_code == 200
        etags.append({"partNumber": part["partNumber"], "etag": put.headers["ETag"]})
    video_id = created.data["video"]["videoId"]
    done = call(
        cdn.handler,
        api_event(
            "cdn/complete_upload.json",
            headers=org.headers,
            body={"parts": etags},
            path=f"/v1/cdn/videos/{video_id}/upload/complete",
            path_params={"video_id": video_id},
        ),
        lambda_context,
    )
    assert done.status == 200
    head = boto3.client("s3").head_object(Bucket=UPLOADS, Key=f"{org.id}/{video_id}/source")
    assert head["ContentLength"] == size


def test_a_browser_asks_for_parts_whatever_the_size_and_the_joined_upload_transcodes(
    org, lambda_context, tmp_path
):
    fund(org)
    clip = make_video(tmp_path / "clip.mp4", width=320, height=180, seconds=2)
    size = clip.stat().st_size
    assert size < media.media_settings().multipart_threshold_bytes
    created = create(org, lambda_context, sizeBytes=size, multipart=True)
    assert created.status == 201
    upload = created.data["upload"]
    assert upload["type"] == "multipart" and upload["uploadId"] and upload["url"] is None
    assert upload["partSize"] >= 8 * 1024**2 and [p["partNumber"] for p in upload["parts"]] == [1]
    put = httpx.put(upload["parts"][0]["url"], content=clip.read_bytes())
    assert put.status_code == 200, put.text
    video_id = created.data["video"]["videoId"]
    done = call(
        cdn.handler,
        api_event(
            "cdn/complete_upload.json",
            headers=org.headers,
            body={"parts": [{"partNumber": 1, "etag": put.headers["ETag"]}]},
            path=f"/v1/cdn/videos/{video_id}/upload/complete",
            path_params={"video_id": video_id},
        ),
        lambda_context,
    )
    assert done.status == 200 and done.data["videoId"] == video_id
    key = f"{org.id}/{video_id}/source"
    assert boto3.client("s3").head_object(Bucket=UPLOADS, Key=key)["ContentLength"] == size
    record = {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:CompleteMultipartUpload",
        "s3": {
            "bucket": {"name": UPLOADS, "arn": f"arn:aws:s3:::{UPLOADS}"},
            "object": {"key": key.replace("/", "%2F"), "size": size, "sequencer": "01"},
        },
    }
    assert transcode.handler({"Records": [record]}, lambda_context)["results"][0]["outcome"] == "completed"
    assert get(org, lambda_context, "video_status", video_id, "/status").data["status"] == "completed"


def test_multipart_false_keeps_one_put_and_a_file_over_5_gib_must_go_in_parts(org, lambda_context):
    fund(org)
    one = create(org, lambda_context, sizeBytes=200 * 1024**2, multipart=False)
    assert one.status == 201 and one.data["upload"]["type"] == "put" and one.data["upload"]["url"]
    before = media.list_videos(org.id)
    refused = create(org, lambda_context, sizeBytes=5 * 1024**3 + 1, multipart=False)
    assert refused.status == 400 and refused.body["error"] == "VALIDATION_ERROR"
    assert "multipart" in refused.body["message"]
    assert media.list_videos(org.id) == before
    assert create(org, lambda_context, multipart="yes").status == 400


def test_each_multipart_part_url_is_signed_for_its_declared_size_and_refuses_a_bigger_part(
    org, lambda_context, monkeypatch
):
    fund(org)
    monkeypatch.setenv("MULTIPART_THRESHOLD_BYTES", str(5 * 1024**2))
    monkeypatch.setenv("MULTIPART_PART_BYTES", str(5 * 1024**2))
    media.media_settings.cache_clear()
    size = 11 * 1024**2

    upload = create(org, lambda_context, sizeBytes=size).data["upload"]

    # The length is part of each URL's SigV4 signature (moto does not check signatures, S3 does: a
    # part of any other length gets 403 SignatureDoesNotMatch); the last part's is what is left.
    for part in upload["parts"]:
        query = parse_qs(urlparse(part["url"]).query)
        assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
        assert "content-length" in query["X-Amz-SignedHeaders"][0].split(";")
    assert cdn_logic.part_sizes(size, 5 * 1024**2) == [(1, 5 * 1024**2), (2, 5 * 1024**2), (3, 1024**2)]
    exact = httpx.put(upload["parts"][-1]["url"], content=b"x" * 1024**2)
    assert exact.status_code == 200, exact.text


# --- listing, deleting, other orgs -------------------------------------------------------------------------


def test_list_get_and_delete_remove_media_and_record(org, lambda_context, tmp_path):
    fund(org)
    video_id = uploaded_and_transcoded(org, lambda_context, tmp_path, width=320, height=180, seconds=2)
    other = create(org, lambda_context, title="Lesson 2").data["video"]["videoId"]

    listed = call(cdn.handler, api_event("cdn/list_videos.json", headers=org.headers), lambda_context).data
    assert [v["videoId"] for v in listed["videos"]] == [other, video_id]
    assert keys(MEDIA, f"{org.id}/{video_id}/")

    deleted = call(
        cdn.handler,
        api_event(
            "cdn/delete_video.json",
            headers=org.headers,
            path=f"/v1/cdn/videos/{video_id}",
            path_params={"video_id": video_id},
        ),
        lambda_context,
    )

    assert deleted.status == 200 and deleted.data == {"videoId": video_id, "deleted": True}
    assert keys(MEDIA, f"{org.id}/{video_id}/") == set()
    assert keys(UPLOADS, f"{org.id}/{video_id}/") == set()
    assert get(org, lambda_context, "get_video", video_id).status == 404


@pytest.mark.parametrize(
    "case,suffix,method",
    [
        ("get_video", "", "GET"),
        ("video_status", "/status", "GET"),
        ("video_url", "/url", "GET"),
        ("delete_video", "", "DELETE"),
        ("complete_upload", "/upload/complete", "POST"),
    ],
)
def test_another_orgs_video_is_404_and_never_its_data(org, other_org, lambda_context, case, suffix, method):
    fund(org)
    video_id = create(org, lambda_context, title="Secret syllabus").data["video"]["videoId"]

    event = api_event(
        f"cdn/{case}.json",
        headers=other_org.headers,
        path=f"/v1/cdn/videos/{video_id}{suffix}",
        path_params={"video_id": video_id},
        body={"parts": [{"partNumber": 1, "etag": "x"}]} if method == "POST" else None,
    )
    reply = call(cdn.handler, event, lambda_context)

    assert reply.status == 404 and reply.body["error"] == "NOT_FOUND"
    assert "Secret syllabus" not in str(reply.body) and video_id not in str(reply.body)
    listed = call(
        cdn.handler, api_event("cdn/list_videos.json", headers=other_org.headers), lambda_context
    ).data
    assert listed["videos"] == []
    assert media.get_video(org.id, video_id).title == "Secret syllabus"  # the DELETE did nothing


def test_unknown_and_malformed_ids_are_404(org, lambda_context):
    for video_id in ("vid_00000000000000000000ffff", "..%2F..", "vid_<script>"):
        assert get(org, lambda_context, "video_status", video_id, "/status").status == 404


def test_without_a_key_every_video_route_is_401(lambda_context):
    reply = call(cdn.handler, api_event("cdn/list_videos.json", headers={}), lambda_context)
    assert reply.status == 401


# --- playback ---------------------------------------------------------------------------------------------


def test_signed_url_plays_in_ffprobe_and_ffmpeg_over_http(org, lambda_context, tmp_path):
    fund(org)
    video_id = uploaded_and_transcoded(org, lambda_context, tmp_path, width=960, height=540, seconds=3)

    with serve(cdn.handler) as base:
        reply = httpx.get(f"{base}/v1/cdn/videos/{video_id}/url", headers=org.headers)
        assert reply.status_code == 200
        data = reply.json()["data"]
        assert set(data) == {"type", "url", "posterUrl", "status", "message"}
        assert (data["type"], data["status"]) == ("hls", "completed")
        assert data["url"].startswith(f"{base}/v1/cdn/stream/{video_id}/master.m3u8?token=")
        assert httpx.get(data["posterUrl"]).content[:2] == b"\xff\xd8"  # a JPEG

        probe = subprocess.run(
            [
                "ffprobe",
                "-v",
                "error",
                "-show_entries",
                "stream=codec_type,width,height",
                "-of",
                "csv=p=0",
                data["url"],
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert probe.returncode == 0, probe.stderr
        assert "video,960,540" in probe.stdout and "video,640,360" in probe.stdout and "audio" in probe.stdout
        decoded = subprocess.run(
            ["ffmpeg", "-v", "error", "-i", data["url"], "-map", "0:v:0", "-f", "null", "-"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert decoded.returncode == 0 and decoded.stderr == ""

        variant = httpx.get(
            f"{base}/v1/cdn/stream/{video_id}/540p/index.m3u8",
            params={"token": data["url"].split("token=")[1]},
        )
        assert variant.status_code == 200
        assert variant.headers["content-type"] == "application/vnd.apple.mpegurl"
        segments = [line for line in variant.text.splitlines() if line and not line.startswith("#")]
        assert segments and all(
            re.search(r"(Signature|X-Amz-Signature)=", s) and "Expires" in s for s in segments
        )


class PausedEncoder:
    """Records the transcoder's FFmpeg run and pauses it (SIGSTOP) the moment its first two segments
    (1 s + 3 s) are out, so a test can play the video while it is, for certain, still being encoded."""

    def __init__(self, monkeypatch) -> None:
        self.proc: subprocess.Popen | None = None
        self.paused = threading.Event()
        real = subprocess.Popen
        outer = self

        class Recording(real):
            def __init__(self, args, *a, **k):
                super().__init__(args, *a, **k)
                if "-hls_segment_filename" in args:
                    outer.proc = self
                    folder = Path(args[args.index("-hls_segment_filename") + 1]).parent.parent
                    threading.Thread(target=outer._pause_after_first_segment, args=(folder,)).start()

        monkeypatch.setattr(subprocess, "Popen", Recording)

    def _pause_after_first_segment(self, folder: Path) -> None:
        while self.proc.poll() is None:
            playlist = folder / "360p" / "index.m3u8"  # rewritten after each complete segment
            if playlist.exists() and playlist.read_text().count("#EXTINF") >= 2:
                os.kill(self.proc.pid, signal.SIGSTOP)
                self.paused.set()
                return
            time.sleep(0.005)

    def resume(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)


def test_video_plays_over_http_while_it_is_still_transcoding(org, lambda_context, tmp_path, monkeypatch):
    fund(org)
    video_id, event = uploaded(org, lambda_context, tmp_path, width=960, height=540, seconds=40)
    encoder = PausedEncoder(monkeypatch)
    outcome: list[dict] = []
    worker = threading.Thread(target=lambda: outcome.append(transcode.handler(event, lambda_context)))
    worker.start()
    try:
        assert encoder.paused.wait(60), "the encoder never wrote a segment"
        with serve(cdn.handler) as base:
            for _ in range(100):  # the publisher ships four times a second
                data = httpx.get(f"{base}/v1/cdn/videos/{video_id}/url", headers=org.headers).json()["data"]
                if data["url"]:
                    break
                time.sleep(0.1)
            # playable while processing: API.md's statuses unchanged, the URL already there
            assert (data["type"], data["status"]) == ("hls", "processing")
            status = httpx.get(f"{base}/v1/cdn/videos/{video_id}/status", headers=org.headers).json()["data"]
            assert status["status"] == "processing" and status["progress"] < 100
            token = data["url"].split("token=")[1]
            master = httpx.get(data["url"]).text
            assert "360p/index.m3u8" in master and "540p" not in master  # the lowest rung alone
            growing = httpx.get(f"{base}/v1/cdn/stream/{video_id}/360p/index.m3u8", params={"token": token})
            assert "#EXT-X-PLAYLIST-TYPE:EVENT" in growing.text and "#EXT-X-ENDLIST" not in growing.text
            assert growing.headers["cache-control"] == "no-cache"

            # a real player decodes the first seconds over HTTP while the encoder is still paused
            assert decode_first_frames(data["url"], 30) == 30
            assert encoder.proc.poll() is None and media.get_video(org.id, video_id).status == "processing"

            encoder.resume()
            worker.join(120)
            assert outcome[0]["results"][0]["outcome"] == "completed"
            done = httpx.get(f"{base}/v1/cdn/videos/{video_id}/url", headers=org.headers).json()["data"]
            assert done["status"] == "completed" and done["posterUrl"]
            assert "540p/index.m3u8" in httpx.get(done["url"]).text
            ended = httpx.get(f"{base}/v1/cdn/stream/{video_id}/360p/index.m3u8", params={"token": token})
            # the playlist players already hold only grew and ended (RFC 8216 6.2.1)
            assert ended.text.rstrip().endswith("#EXT-X-ENDLIST") and len(ended.text) > len(growing.text)
            vod = httpx.get(f"{base}/v1/cdn/stream/{video_id}/540p/index.m3u8", params={"token": token})
            assert "#EXT-X-PLAYLIST-TYPE:VOD" in vod.text
    finally:
        encoder.resume()
        worker.join(120)


def test_with_cloudfront_the_proxy_hands_out_cloudfront_signed_segments(
    org, lambda_context, tmp_path, monkeypatch
):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from media_support import verify_cloudfront_url

    fund(org)
    video_id = uploaded_and_transcoded(org, lambda_context, tmp_path, width=320, height=180, seconds=5)
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    boto3.client("secretsmanager").create_secret(Name="verriflo/media-cdn-key", SecretString=pem)
    monkeypatch.setenv("CLOUDFRONT_DOMAIN", "media.example.cloudfront.net")
    monkeypatch.setenv("CLOUDFRONT_KEY_PAIR_ID", "KTESTKEYPAIR")
    monkeypatch.setenv("CLOUDFRONT_PRIVATE_KEY_SECRET_NAME", "verriflo/media-cdn-key")
    media.media_settings.cache_clear()
    playback._cloudfront_signer.cache_clear()
    try:
        with serve(cdn.handler) as base:
            data = httpx.get(f"{base}/v1/cdn/videos/{video_id}/url", headers=org.headers).json()["data"]
            token = data["url"].split("token=")[1]
            variant = httpx.get(f"{base}/v1/cdn/stream/{video_id}/180p/index.m3u8", params={"token": token})
    finally:
        playback._cloudfront_signer.cache_clear()
    segments = [line for line in variant.text.splitlines() if line and not line.startswith("#")]
    assert len(segments) >= 2
    for url in [*segments, data["posterUrl"]]:
        assert url.startswith(f"https://media.example.cloudfront.net/{org.id}/{video_id}/")
        expires = verify_cloudfront_url(private.public_key(), url, "KTESTKEYPAIR")
        assert expires > time.time()


def test_expired_tampered_missing_or_foreign_tokens_are_403(org, other_org, lambda_context, tmp_path):
    fund(org)
    fund(other_org)
    video_id = uploaded_and_transcoded(org, lambda_context, tmp_path, width=320, height=180, seconds=1)
    good, _ = playback.sign(org.id, video_id, 3600)
    expired, _ = playback.sign(org.id, video_id, 60, now=time.time() - 3600)
    payload, signature = good.split(".")
    forged_payload = playback._b64(
        b'{"o":"%s","v":"%s","e":9999999999}' % (org.id.encode(), video_id.encode())
    )
    someone_elses, _ = playback.sign(other_org.id, "vid_0123456789abcdef01234567", 3600)

    with serve(cdn.handler) as base:
        url = f"{base}/v1/cdn/stream/{video_id}/master.m3u8"
        assert httpx.get(url, params={"token": good}).status_code == 200
        for token in (
            expired,
            f"{forged_payload}.{signature}",
            f"{payload}.{signature[:-2]}xx",
            someone_elses,
            "",
            "junk",
        ):
            reply = httpx.get(url, params={"token": token})
            assert reply.status_code == 403, token
            assert reply.json()["error"] == "FORBIDDEN"
        assert httpx.get(url).status_code == 403
        assert "expired" in httpx.get(url, params={"token": expired}).json()["message"]
        # a valid token never opens another rendition path than the video's own
        assert httpx.get(
            f"{base}/v1/cdn/stream/{video_id}/..%2F..%2Fother/index.m3u8", params={"token": good}
        ).status_code in (403, 404)


@pytest.mark.parametrize(
    ("host", "prefix"),
    [
        ("abc123.execute-api.us-east-1.amazonaws.com", "/aws"),  # the stage (the environment)
        ("api.example.com", ""),  # the optional custom domain, mapped at its root
    ],
)
def test_on_aws_the_stream_url_uses_the_callers_host_and_stage(
    org, lambda_context, tmp_path, monkeypatch, host, prefix
):
    fund(org)
    video_id = uploaded_and_transcoded(org, lambda_context, tmp_path, width=320, height=180, seconds=1)
    monkeypatch.setenv("STAGE", "aws")
    from verriflo import settings

    settings.reset_settings()
    event = api_event(
        "cdn/video_url.json",
        headers=org.headers | {"Host": host},
        path=f"/v1/cdn/videos/{video_id}/url",
        path_params={"video_id": video_id},
    )
    event["requestContext"]["path"] = f"{prefix}/v1/cdn/videos/{video_id}/url"

    url = call(cdn.handler, event, lambda_context).data["url"]

    assert url.startswith(f"https://{host}{prefix}/v1/cdn/stream/{video_id}/master.m3u8?")
