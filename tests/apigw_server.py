"""A tiny local HTTP server that turns each request into an API Gateway REST (v1) proxy event for a
Lambda handler, in-process: lets real HTTP clients (ffmpeg, ffprobe, httpx) talk to a function."""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from support import LambdaContext

STAGE = "local"
API_ID = "local"
# LocalStack's offline address of a REST API stage; the functions build their public URLs from it.
PREFIX = f"/_aws/execute-api/{API_ID}/{STAGE}"


def to_event(method: str, target: str, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """The API Gateway proxy event API Gateway would send for this request."""
    parts = urlsplit(target)
    query = parse_qs(parts.query, keep_blank_values=True)
    try:
        text, encoded = (body.decode() if body else None), False
    except UnicodeDecodeError:  # as API Gateway does: a body that is not UTF-8 arrives as base64
        text, encoded = base64.b64encode(body).decode(), True
    return {
        "resource": parts.path,
        "path": parts.path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": parts.path,
            "httpMethod": method,
            "path": f"/{STAGE}{parts.path}",
            "stage": STAGE,
            "requestId": str(uuid.uuid4()),
            "accountId": "000000000000",
            "identity": {"sourceIp": "127.0.0.1", "userAgent": headers.get("User-Agent", "")},
            "apiId": API_ID,
        },
        "body": text,
        "isBase64Encoded": encoded,
    }


@contextmanager
def serve(handler: Callable[[dict[str, Any], Any], dict[str, Any]]) -> Iterator[str]:
    """Serve `handler` on a free loopback port; yields the base URL (with the stage prefix)."""

    class Gateway(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k: v for k, v in self.headers.items()} | {"X-Forwarded-Proto": "http"}
            target = self.path[len(PREFIX) :] if self.path.startswith(f"{PREFIX}/") else self.path
            result = handler(to_event(self.command, target, headers, body), LambdaContext())
            payload = result.get("body") or ""
            data = base64.b64decode(payload) if result.get("isBase64Encoded") else payload.encode()
            self.send_response(result["statusCode"])
            merged = dict(result.get("headers") or {})
            for k, values in (result.get("multiValueHeaders") or {}).items():
                merged.setdefault(k, values[-1])
            for k, v in merged.items():
                if k.lower() != "content-length":
                    self.send_header(k, str(v))
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_OPTIONS = _answer  # noqa: N815 - http.server's naming

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{PREFIX}"
    finally:
        server.shutdown()
        server.server_close()
