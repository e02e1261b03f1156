"""One signed HTTP POST to a webhook endpoint, guarded against SSRF, with hard time limits.

The URL is resolved and checked at send time (it may have changed since it was saved), and the
connection goes to the checked address itself, with the original Host header and TLS server name,
so DNS cannot be swapped between the check and the connect. Redirects are not followed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from verriflo import netguard
from verriflo.webhooks import webhook_settings

if TYPE_CHECKING:
    import httpx

USER_AGENT = "Verriflo-Webhooks/1.0"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one attempt got back."""

    status_code: int | None
    error: str | None
    response: str | None
    duration_ms: int

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


@cache
def _client() -> httpx.Client:
    import httpx

    settings = webhook_settings()
    return httpx.Client(
        timeout=httpx.Timeout(settings.timeout_s, connect=settings.connect_timeout_s),
        follow_redirects=False,
        limits=httpx.Limits(
            max_connections=settings.concurrency * 2, max_keepalive_connections=settings.concurrency
        ),
        trust_env=False,  # never route webhooks through a proxy from the environment
    )


def reset_client() -> None:
    """Drop the pooled client (tests change timeouts)."""
    if _client.cache_info().currsize:
        _client().close()
    _client.cache_clear()


def send(url: str, headers: dict[str, str], body: str) -> Outcome:
    """POST `body` to `url` once; never raises for receiver or network faults."""
    import httpx

    settings = webhook_settings()
    started = time.monotonic()

    def done(status: int | None, error: str | None, response: str | None = None) -> Outcome:
        return Outcome(status, error, response, int((time.monotonic() - started) * 1000))

    try:
        target = netguard.resolve(url, allow_private=settings.allow_private_targets)
    except netguard.BlockedTarget as exc:
        return done(None, f"blocked: {exc.message}")
    address = target.addresses[0]
    request_headers = headers | {
        "host": target.host_header,
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    deadline = started + settings.timeout_s
    try:
        with _client().stream(
            "POST",
            target.url_for(address),
            content=body.encode(),
            headers=request_headers,
            extensions=extensions,
        ) as response:
            kept = bytearray()
            for chunk in response.iter_bytes():
                kept += chunk
                if len(kept) >= settings.max_response_bytes or time.monotonic() > deadline:
                    break
            text = kept[: settings.max_response_bytes].decode("utf-8", "replace")
            return done(response.status_code, None, text)
    except httpx.TimeoutException:
        return done(None, "timeout")
    except httpx.RemoteProtocolError:
        return done(None, "connection closed")
    except httpx.ConnectError:
        return done(None, "connection refused")
    except httpx.HTTPError as exc:
        return done(None, f"network error: {type(exc).__name__}")
