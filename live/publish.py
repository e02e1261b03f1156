"""Upload the built classroom page (live/dist) to the stack's page bucket.

`python live/publish.py --bucket <LiveUiBucketName> --livekit-url ws://127.0.0.1:7880` (or
`--stack verriflo` to read the bucket from the stack's outputs). The HTML goes under the key
`iframe/live` as text/html so `<LiveUiUrl>/iframe/live?token=...` is the page itself, assets under
`iframe/assets/` (content-hashed, cached for a year), and `iframe/config.json` tells the page where
LiveKit is. AWS endpoints come from the environment (AWS_ENDPOINT_URL for LocalStack).
"""

from __future__ import annotations

import argparse
import json
import mimetypes
from pathlib import Path

import boto3

DIST = Path(__file__).resolve().parent / "dist"
IMMUTABLE = "public, max-age=31536000, immutable"
FRESH = "no-cache"


def stack_output(stack: str, key: str) -> str:
    """One output of the deployed stack."""
    outputs = boto3.client("cloudformation").describe_stacks(StackName=stack)["Stacks"][0].get("Outputs", [])
    for item in outputs:
        if item["OutputKey"] == key:
            return item["OutputValue"]
    raise SystemExit(f"stack {stack} has no output {key}")


def upload(
    bucket: str, files: dict[str, Path], pages: set[str], assets: str, config: tuple[str, dict]
) -> list[str]:
    """Put `files` (key -> built file) in the bucket: the keys in `pages` as HTML, never cached; those
    under `assets` (content-hashed) cached for a year; the rest by their type, never cached; then the
    page's config (key, JSON) beside them. Returns the keys written. The Console's publisher uses it too."""
    s3 = boto3.client("s3")
    written = []
    for key, path in files.items():
        if key in pages:
            content_type, cache = "text/html; charset=utf-8", FRESH
        else:
            content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            cache = IMMUTABLE if key.startswith(assets) else FRESH
        s3.put_object(
            Bucket=bucket, Key=key, Body=path.read_bytes(), ContentType=content_type, CacheControl=cache
        )
        written.append(key)
    config_key, values = config
    s3.put_object(
        Bucket=bucket,
        Key=config_key,
        Body=json.dumps(values).encode(),
        ContentType="application/json",
        CacheControl=FRESH,
    )
    return [*written, config_key]


def publish(bucket: str, livekit_url: str, api_url: str | None = None) -> list[str]:
    """Upload every built file and the page's config; returns the keys written."""
    if not (DIST / "iframe" / "live").exists():
        raise SystemExit(
            "live/dist is missing: run `npm --prefix live ci && npm --prefix live run build` first"
        )
    files = {p.relative_to(DIST).as_posix(): p for p in sorted(DIST.rglob("*")) if p.is_file()}
    # apiUrl: where the page's AI tutor panel calls the API (with the join token); no panel without it.
    config = {"livekitUrl": livekit_url} | ({"apiUrl": api_url} if api_url else {})
    return upload(bucket, files, {"iframe/live"}, "iframe/assets/", ("iframe/config.json", config))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bucket")
    parser.add_argument("--stack", help="read LiveUiBucketName from this stack's outputs")
    parser.add_argument(
        "--livekit-url", required=True, help="LiveKit URL the browser connects to (ws:// or wss://)"
    )
    parser.add_argument("--api-url", help="the API's base URL, for the AI tutor panel (ApiUrl output)")
    args = parser.parse_args()
    bucket = args.bucket or (stack_output(args.stack, "LiveUiBucketName") if args.stack else None)
    if not bucket:
        parser.error("--bucket or --stack is required")
    keys = publish(bucket, args.livekit_url, args.api_url)
    print(json.dumps({"bucket": bucket, "keys": len(keys)}))


if __name__ == "__main__":
    main()
