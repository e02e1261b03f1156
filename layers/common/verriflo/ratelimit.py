"""Per-org, per-route-group rate limits in Redis: one atomic round trip per request.

A fixed window counter kept by a Lua script (INCR and, for a new window, PEXPIRE), so concurrent
requests from many Lambda instances share one exact count. Budgets come from the org
(`rateLimits.<group>` or `rateLimits.default`), else from settings. Headers follow the IETF httpapi
RateLimit draft (`RateLimit-Policy`, `RateLimit`) plus the widely used `X-RateLimit-*` trio.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

from verriflo.auth import OrgContext
from verriflo.cache import redis_client, unavailable_on_failure
from verriflo.errors import RateLimited
from verriflo.settings import api_settings

_SCRIPT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return count
"""


@dataclass(frozen=True, slots=True)
class Decision:
    """The outcome of one request against a budget."""

    allowed: bool
    group: str
    limit: int
    remaining: int
    window: int
    reset_after: int  # seconds until the window resets
    reset_at: int  # epoch seconds of the reset

    def headers(self) -> dict[str, str]:
        """Response headers describing the budget."""
        headers = {
            "RateLimit-Policy": f'"{self.group}";q={self.limit};w={self.window}',
            "RateLimit": f'"{self.group}";r={self.remaining};t={self.reset_after}',
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset_at),
        }
        if not self.allowed:
            headers["Retry-After"] = str(self.reset_after)
        return headers


@cache
def _script() -> Any:
    # register_script sends EVALSHA and falls back to EVAL once if the server lacks the script.
    return redis_client().register_script(_SCRIPT)


def budget(org: OrgContext, group: str) -> tuple[int, int]:
    """(limit, window seconds) for this org and group."""
    configured = org.rate_limits.get(group) or org.rate_limits.get("default")
    if configured:
        return int(configured["limit"]), int(configured.get("window", 60))
    settings = api_settings()
    return settings.rate_limit_default, settings.rate_limit_window_s


def hit(org: OrgContext, group: str, *, now: float | None = None) -> Decision:
    """Count one request of `org` in `group`; the decision says whether it may proceed."""
    limit, window = budget(org, group)
    now = time.time() if now is None else now
    window_index = int(now // window)
    reset_at = (window_index + 1) * window
    key = f"rl:{org.org_id}:{group}:{window}:{window_index}"
    with unavailable_on_failure():
        count = int(_script()(keys=[key], args=[window * 1000 + 1000]))
    return Decision(
        allowed=count <= limit,
        group=group,
        limit=limit,
        remaining=max(limit - count, 0),
        window=window,
        reset_after=max(math.ceil(reset_at - now), 1),
        reset_at=reset_at,
    )


def enforce(org: OrgContext, group: str) -> Decision:
    """Count the request and raise RateLimited (with the headers) when over budget."""
    decision = hit(org, group)
    if not decision.allowed:
        raise RateLimited(headers=decision.headers())
    return decision


def reset_script() -> None:
    """Forget the registered script (tests point at fresh servers)."""
    _script.cache_clear()
