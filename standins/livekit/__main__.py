"""Run the LiveKit stand-in: `python -m standins.livekit --port 7880 --api-key K --api-secret S
--webhook-url http://...` (credentials may also come from LIVEKIT_API_KEY / LIVEKIT_API_SECRET, or
from the stack's LiveKit secret with `--secret-name <stack>/livekit`)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading

from standins.livekit.server import StandIn


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m standins.livekit", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7880)
    parser.add_argument("--api-key", default=os.environ.get("LIVEKIT_API_KEY"))
    parser.add_argument("--api-secret", default=os.environ.get("LIVEKIT_API_SECRET"))
    parser.add_argument(
        "--secret-name",
        help="read apiKey/apiSecret from this Secrets Manager secret (endpoint from AWS_ENDPOINT_URL)",
    )
    parser.add_argument(
        "--webhook-url", action="append", default=[], help="where to POST signed webhooks (repeatable)"
    )
    args = parser.parse_args()
    if args.secret_name:
        import json

        import boto3

        value = json.loads(
            boto3.client("secretsmanager").get_secret_value(SecretId=args.secret_name)["SecretString"]
        )
        args.api_key, args.api_secret = value["apiKey"], value["apiSecret"]
    if not args.api_key or not args.api_secret:
        parser.error("--api-key and --api-secret (or LIVEKIT_API_KEY / LIVEKIT_API_SECRET) are required")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    stand_in = StandIn(
        args.api_key, args.api_secret, webhook_urls=args.webhook_url, host=args.host, port=args.port
    )
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    stand_in.start()
    logging.getLogger("standins.livekit").info("listening on %s", stand_in.url)
    stopped.wait()
    stand_in.stop()


if __name__ == "__main__":
    main()
