"""`verriflo video upload FILE`: upload a video through the public API with a progress bar, follow
transcoding until it is playable, and print the signed playback URL.

It uses the API exactly as an integrating developer would (`POST /v1/cdn/videos`, the presigned
PUT or multipart parts, `/status`, `/url`), so it doubles as a smoke test of a deployed stack.
A dev tool (never in the Lambda layer): httpx for HTTP, rich for the progress bars.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TransferSpeedColumn

CHUNK = 256 * 1024
CONTENT_TYPES = {
    ".mp4": "video/mp4",
    ".mov": "video/quicktime",
    ".webm": "video/webm",
    ".mkv": "video/x-matroska",
    ".ts": "video/mp2t",
    ".m4v": "video/mp4",
}


class ApiError(Exception):
    """The API answered with its error envelope."""


def _api(method: str, url: str, key: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    if not url.startswith(("http://", "https://")):
        raise ApiError("the API URL must be http(s)")
    try:
        response = httpx.request(method, url, json=body, headers={"VF-ORG-ID": key}, timeout=30)
    except httpx.HTTPError as exc:
        raise ApiError(f"{url} did not answer: {exc}") from exc
    if response.is_success:
        return response.json()["data"]
    try:
        envelope = response.json()
    except ValueError:
        raise ApiError(f"HTTP {response.status_code} from {url}") from None
    raise ApiError(f"{envelope.get('message')} ({envelope.get('error')}, HTTP {response.status_code})")


@contextmanager
def _bar(label: str, total: float, stream: Any, *, speed: bool = False) -> Iterator[Callable[[float], None]]:
    """A one-line progress bar on `stream`; yields `to(done)`, and shows 100% when the block ends."""
    columns = [TextColumn(f"{label:<11}"), BarColumn(bar_width=30), TextColumn("{task.percentage:5.1f}%")]
    if speed:
        columns.append(TransferSpeedColumn())
    progress = Progress(*columns, console=Console(file=stream, stderr=stream is sys.stderr))
    task = progress.add_task(label, total=total)
    with progress:
        yield lambda done: progress.update(task, completed=done)
        progress.update(task, completed=total)


def _put(
    url: str, source: BinaryIO, length: int, headers: dict[str, str], advance: Callable[[int], None]
) -> str:
    """Stream `length` bytes of `source` to a presigned URL; returns the ETag."""

    def blocks() -> Iterator[bytes]:
        left = length
        while left:
            block = source.read(min(CHUNK, left))
            if not block:
                raise ApiError("the file got shorter while uploading")
            yield block
            left -= len(block)
            advance(len(block))

    # An explicit Content-Length: presigned S3 uploads refuse chunked transfer encoding.
    sized = headers | {"Content-Length": str(length)}
    response = httpx.put(url, content=blocks(), headers=sized, timeout=120)
    if response.status_code >= 300:
        raise ApiError(f"upload refused by storage: HTTP {response.status_code} {response.content[:200]!r}")
    return response.headers.get("ETag") or ""


def upload(
    path: Path,
    *,
    api_url: str,
    key: str,
    title: str | None = None,
    wait: bool = True,
    poll_s: float = 2.0,
    timeout_s: float = 3600,
    out: Any = sys.stdout,
    err: Any = sys.stderr,
) -> dict[str, Any]:
    """Upload `path`, follow it until playable (unless `wait` is false); returns the url call's data."""
    base = api_url.rstrip("/")
    size = path.stat().st_size
    content_type = CONTENT_TYPES.get(path.suffix.lower(), "application/octet-stream")
    created = _api(
        "POST",
        f"{base}/v1/cdn/videos",
        key,
        {"title": title or path.stem, "sizeBytes": size, "contentType": content_type},
    )
    video_id, plan = created["video"]["videoId"], created["upload"]
    print(f"video {video_id}", file=out)
    with _bar("uploading", size, err, speed=True) as to, path.open("rb") as source:
        sent = 0

        def advance(n: int) -> None:
            nonlocal sent
            sent += n
            to(sent)

        if plan["type"] == "put":
            _put(plan["url"], source, size, plan["headers"], advance)
        else:
            etags = []
            for part in plan["parts"]:
                length = min(plan["partSize"], size - (part["partNumber"] - 1) * plan["partSize"])
                etags.append(
                    {"partNumber": part["partNumber"], "etag": _put(part["url"], source, length, {}, advance)}
                )
            _api("POST", f"{base}{plan['completePath']}", key, {"parts": etags})
    if not wait:
        return {"videoId": video_id}
    deadline = time.monotonic() + timeout_s
    with _bar("transcoding", 100, err) as to:
        while True:
            status = _api("GET", f"{base}/v1/cdn/videos/{video_id}/status", key)
            to(status["progress"])
            if status["status"] == "failed":
                raise ApiError(_api("GET", f"{base}/v1/cdn/videos/{video_id}/url", key)["message"])
            if status["status"] == "completed":
                break
            if time.monotonic() > deadline:
                raise ApiError(f"still {status['status']} after {timeout_s:.0f} s")
            time.sleep(poll_s)
    playable = _api("GET", f"{base}/v1/cdn/videos/{video_id}/url", key)
    print(playable["url"], file=out)
    return playable | {"videoId": video_id}


def run(args: argparse.Namespace) -> None:
    """The `verriflo video upload` command."""
    key = args.key or os.environ.get("VERRIFLO_API_KEY")
    api_url = args.api_url or os.environ.get("VERRIFLO_API_URL")
    if not key or not api_url:
        raise SystemExit("give --api-url and --key (or VERRIFLO_API_URL and VERRIFLO_API_KEY)")
    path = Path(args.file)
    if not path.is_file():
        raise SystemExit(f"no such file: {path}")
    try:
        upload(
            path, api_url=api_url, key=key, title=args.title, wait=not args.no_wait, timeout_s=args.timeout
        )
    except ApiError as exc:
        raise SystemExit(f"error: {exc}") from exc


UNITS = {"": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2, "mib": 1024**2}
UNITS |= {"g": 1024**3, "gb": 1024**3, "gib": 1024**3, "t": 1024**4, "tb": 1024**4, "tib": 1024**4}


def size(text: str) -> int:
    """Bytes from `500M`, `2GiB`, `1048576` (binary units); `-1` clears the org's own limit."""
    number, unit = text.strip().lower(), ""
    for suffix in sorted(UNITS, key=len, reverse=True):
        if suffix and number.endswith(suffix):
            number, unit = number[: -len(suffix)].strip(), suffix
            break
    try:
        value = float(number)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 500M, 2GiB, -1 to clear)") from exc
    return -1 if value < 0 else int(value * UNITS[unit])


def limits(args: argparse.Namespace) -> None:
    """The `verriflo video limits` command: show or set an org's upload limits (in MongoDB)."""
    from verriflo import media, orgs

    orgs.get_org(args.org_id)  # NotFound for an unknown org: nothing is written
    if args.max_upload is not None or args.storage is not None:
        found = media.set_upload_limits(
            args.org_id, max_upload_bytes=args.max_upload, storage_bytes=args.storage
        )
    else:
        found = media.upload_limits(args.org_id)
    print(json.dumps(found.model_dump(by_alias=False)))


def add_parser(sub: Any) -> None:
    """Register `video upload` and `video limits` on the CLI's subcommands."""
    video = sub.add_parser("video", help="videos (through the public API)").add_subparsers(
        required=True, metavar="action"
    )
    u = video.add_parser("upload", help="upload a file, follow transcoding, print the signed URL")
    u.add_argument("file")
    u.add_argument("--title")
    u.add_argument(
        "--api-url", help="base URL of the API, e.g. the stack's ApiUrl output (env VERRIFLO_API_URL)"
    )
    u.add_argument("--key", help="the org's API key (env VERRIFLO_API_KEY)")
    u.add_argument("--no-wait", action="store_true", help="stop after the upload")
    u.add_argument("--timeout", type=float, default=3600, help="seconds to wait for transcoding")
    u.set_defaults(func=run)
    lim = video.add_parser(
        "limits", help="show or set an org's upload limits (default: the deployment's settings)"
    )
    lim.add_argument("org_id")
    lim.add_argument("--max-upload", type=size, help="largest single upload, e.g. 2GiB (-1: default)")
    lim.add_argument("--storage", type=size, help="all of the org's sources together (-1: default)")
    lim.set_defaults(func=limits)
