"""Helpers for the media tests: tiny real videos made by FFmpeg, the media buckets in moto, and a
queue that collects what the functions publish on the event bus."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # imported where used: the benchmarks load this module beside bench/support.py
    from support import EventTap

UPLOADS, MEDIA, RECORDINGS = "verriflo-test-uploads", "verriflo-test-media", "verriflo-test-recordings"


def ffmpeg() -> str:
    """Debian's ffmpeg (tests need a real one; `apt-get install ffmpeg`)."""
    found = shutil.which("ffmpeg")
    if not found:
        raise RuntimeError("ffmpeg is not installed: apt-get install -y ffmpeg")
    return found


def make_video(
    path: Path,
    *,
    width: int = 640,
    height: int = 360,
    seconds: float = 3,
    rate: int = 15,
    audio: bool = True,
    fmt: str | None = None,
) -> Path:
    """A synthetic test clip (lavfi testsrc2 + a sine tone), small and quick to encode."""
    cmd = [
        ffmpeg(),
        "-v",
        "error",
        "-y",
        "-f",
        "lavfi",
        "-i",
        f"testsrc2=size={width}x{height}:rate={rate}:duration={seconds}",
    ]
    if audio:
        cmd += [
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:sample_rate=48000:duration={seconds}",
            "-c:a",
            "aac",
            "-b:a",
            "64k",
        ]
    cmd += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", str(rate * 2)]
    if fmt:
        cmd += ["-f", fmt]
    cmd.append(str(path))
    subprocess.run(cmd, check=True, timeout=120)
    return path


def truncate(path: Path, keep: float = 0.5) -> Path:
    """Cut a file to a fraction of its bytes (an interrupted upload)."""
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def use_media_env(monkeypatch: Any) -> None:
    """Point the media settings at the moto buckets (call inside the `aws_env` fixture)."""
    import boto3
    from transcode import pipeline
    from verriflo import media

    for name, value in {
        "UPLOADS_BUCKET": UPLOADS,
        "MEDIA_BUCKET": MEDIA,
        "RECORDINGS_BUCKET": RECORDINGS,
        "PLAYBACK_SECRET_NAME": "verriflo/playback-signing-key",
    }.items():
        monkeypatch.setenv(name, value)
    s3 = boto3.client("s3")
    for bucket in (UPLOADS, MEDIA, RECORDINGS):
        try:
            s3.create_bucket(Bucket=bucket)
        except s3.exceptions.BucketAlreadyOwnedByYou:
            pass
    sm = boto3.client("secretsmanager")
    try:
        sm.create_secret(Name="verriflo/playback-signing-key", SecretString="test-playback-" + "k" * 40)
    except sm.exceptions.ResourceExistsException:
        pass
    media.media_settings.cache_clear()
    pipeline.ffmpeg_settings.cache_clear()


def keys(bucket: str, prefix: str) -> set[str]:
    """Every key under a prefix."""
    import boto3

    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {o["Key"] for page in pages for o in page.get("Contents", [])}


def tap_media_events(bus: str = "verriflo-test-events") -> EventTap:
    """The media events (`video.*`, `recording.*`) published on `bus` from now on; other services'
    events (e.g. the ledger's credits.low) are not what these tests watch."""
    from support import tap_events

    return tap_events(bus, prefixes=("video.", "recording."))


@contextmanager
def s3_over_http() -> Iterator[str]:
    """moto's S3 over real HTTP (sharing the in-process backend), so presigned URLs work for FFmpeg."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def state_machine_definition(step_arn: str) -> str:
    """The chunked-transcode ASL with its Lambda ARN substituted, as SAM's DefinitionSubstitutions do."""
    text = (
        Path(__file__).resolve().parents[1] / "functions/transcode/statemachine/chunked.asl.json"
    ).read_text()
    return text.replace("${TranscodeStepFunctionArn}", step_arn)


def verify_cloudfront_url(public_key: Any, url: str, key_pair_id: str) -> int:
    """Check a CloudFront signed URL as CloudFront does for a canned policy (raises
    cryptography's InvalidSignature when it does not verify); returns its expiry (epoch s)."""
    import base64
    from urllib.parse import parse_qs, urlsplit

    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert set(query) == {"Expires", "Signature", "Key-Pair-Id"}
    assert query["Key-Pair-Id"] == [key_pair_id]
    resource = f"{parts.scheme}://{parts.netloc}{parts.path}"
    expires = int(query["Expires"][0])
    # The canned policy exactly as CloudFront's documentation spells it (no whitespace).
    policy = (
        f'{{"Statement":[{{"Resource":"{resource}",'
        f'"Condition":{{"DateLessThan":{{"AWS:EpochTime":{expires}}}}}}}]}}'
    )
    json.loads(policy)
    # CloudFront's URL-safe base64: '+' -> '-', '=' -> '_', '/' -> '~'
    signature = base64.b64decode(query["Signature"][0].replace("-", "+").replace("_", "=").replace("~", "/"))
    public_key.verify(signature, policy.encode(), padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
    return expires


def decode_first_frames(url: str, frames: int) -> int:
    """Play a (possibly still growing) HLS URL from its start with FFmpeg over HTTP, decoding the
    first `frames` video frames; returns how many it decoded."""
    decoded = subprocess.run(
        [ffmpeg(), "-v", "error", "-live_start_index", "0", "-i", url]
        + ["-map", "0:v:0", "-frames:v", str(frames), "-f", "framemd5", "-"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert decoded.returncode == 0, decoded.stderr
    return len([line for line in decoded.stdout.splitlines() if line and not line.startswith("#")])
