"""Upload the built Console (console/dist) to the stack's page bucket, beside the classroom page.

`python console/publish.py --stack verriflo --api-url <ApiUrl>` (or `--bucket <LiveUiBucketName>`).
The page goes under `console/index.html` and under the key `console/` itself (so
`<LiveUiUrl>/console/` is the page: path-style S3 and CloudFront both serve a key as named), its
content-hashed assets under `console/assets/` (cached for a year), and `console/config.json` tells
it the API's base URL. Never a key: the Console signs its users in and calls the API with their
session. AWS endpoints come from the environment (AWS_ENDPOINT_URL for LocalStack).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent
DIST = HERE / "dist"


def _live_publish():
    # the classroom page's publisher owns reading the stack's outputs; one copy of it
    spec = importlib.util.spec_from_file_location("live_publish", HERE.parent / "live" / "publish.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def publish(bucket: str, api_url: str) -> list[str]:
    """Upload every built file, the page under `console/` too, and its config; returns the keys written."""
    index = DIST / "console" / "index.html"
    if not index.exists():
        raise SystemExit(
            "console/dist is missing: run `npm --prefix console ci && npm --prefix console run build` first"
        )
    files = {p.relative_to(DIST).as_posix(): p for p in sorted(DIST.rglob("*")) if p.is_file()}
    files.pop("build.json", None)
    files["console/"] = index
    config = ("console/config.json", {"apiUrl": api_url.rstrip("/")})
    return _live_publish().upload(
        bucket, files, {"console/", "console/index.html"}, "console/assets/", config
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bucket")
    parser.add_argument("--stack", help="read LiveUiBucketName from this stack's outputs")
    parser.add_argument("--api-url", required=True, help="the API's base URL (ApiUrl output, with the stage)")
    args = parser.parse_args()
    bucket = args.bucket or (
        _live_publish().stack_output(args.stack, "LiveUiBucketName") if args.stack else None
    )
    if not bucket:
        parser.error("--bucket or --stack is required")
    keys = publish(bucket, args.api_url)
    print(json.dumps({"bucket": bucket, "keys": len(keys)}))


if __name__ == "__main__":
    main()
