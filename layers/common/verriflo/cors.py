"""CORS for the Console: the answers to a request from the Console's origin say its browser may read
them. API Gateway answers the preflights (the template's `Cors`); the functions add these headers to
every answer, buffered and streamed, errors included. Any other origin gets no CORS header at all."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from verriflo.settings import api_settings

# What the Console reads from an answer besides the body: the request id of an error, rate limits.
EXPOSED = ", ".join(
    ("X-Request-Id", "Retry-After", "RateLimit", "RateLimit-Policy")
    + ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
)


def _origin(headers: Mapping[str, Any] | None) -> str:
    for key, value in (headers or {}).items():
        if key.lower() == "origin" and isinstance(value, str):
            return value.strip().rstrip("/")
    return ""


def headers(request_headers: Mapping[str, Any] | None) -> dict[str, str]:
    """The CORS headers of the answer to a request with these headers ({} unless it comes from the
    Console's origin, `CONSOLE_ORIGIN`)."""
    allowed = api_settings().console_origin.strip().rstrip("/")
    origin = _origin(request_headers)
    if not allowed or origin != allowed:
        return {}
    return {"Access-Control-Allow-Origin": origin, "Access-Control-Expose-Headers": EXPOSED, "Vary": "Origin"}
