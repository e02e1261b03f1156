"""Per-org, per-route-group rate limits in Redis: one atomic round trip per request.

A fixed window counter kept by a Lua script (INCR and, for a new window, PEXPIRE), so concurrent
requests from many Lambda instances share one exact count. Budgets come from the org
(`rateLimits.<group>` or `rateLimits.default`), else from settings. Headers follow the IETF httpapi
RateLimit draft (`RateLimit-Policy`, `RateLimit`) plus the widely used `X-RateLimit-*` trio.
Where one org credential speaks for many people (the classroom page's participants), each member
also has a budget of its own (`enforce_member`), counted first and kept under half the org's.
"""

from __future__ import annotations

import hashlib
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


def now() -> float:
    """Epoch seconds (tests replace this to move between windows without sleeping)."""
    return time.time()


def hit(org: OrgContext, group: str) -> Decision:
    """Count one request of `org` in `group`; the decision says whether it may proceed."""
    limit, window = budget(org, group)
    return _count(f"rl:{org.org_id}:{group}", group, limit, window)


def _count(prefix: str, group: str, limit: int, window: int) -> Decision:
    at = now()
    window_index = int(at // window)
    reset_at = (window_index + 1) * window
    key = f"{prefix}:{window}:{window_index}"
    with unavailable_on_failure():
        count = int(_script()(keys=[key], args=[window * 1000 + 1000]))
    return Decision(
        allowed=count <= limit,
        group=group,
        limit=limit,
        remaining=max(limit - count, 0),
        window=window,
        reset_after=max(math.ceil(reset_at - at), 1),
        reset_at=reset_at,
    )


def enforce(org: OrgContext, group: str) -> Decision:
    """Count the request and raise RateLimited (with the headers) when over budget."""
    decision = hit(org, group)
    if not decision.allowed:
        raise RateLimited(headers=decision.headers())
    return decision


def member_budget(org: OrgContext, group: str, default: tuple[int, int]) -> tuple[int, int]:
    """(limit, window) of one member's own budget in `group` (the org's `<group>-participant`
    budget, else `default`), never more than half of the org's `group` budget over the same
    window (but at least 1), so that no single member can use up what the org's other members share."""
    configured = org.rate_limits.get(f"{group}-participant")
    limit, window = (int(configured["limit"]), int(configured.get("window", 60))) if configured else default
    org_limit, org_window = budget(org, group)
    return max(min(limit, org_limit * window // (2 * org_window)), 1), window


def enforce_member(org: OrgContext, group: str, member: str, default: tuple[int, int]) -> dict[str, str]:
    """Count a request of one member of `org` (e.g. a classroom participant, named by a verified
    credential) against the member's own budget, then against the org's `group` budget; raise
    RateLimited when either is spent. A refused member's requests never reach the org's count.
    Returns the response headers of both budgets."""
    limit, window = member_budget(org, group, default)
    digest = hashlib.sha256(member.encode()).hexdigest()[:32]
    own = _count(f"rl:{org.org_id}:{group}:m:{digest}", f"{group}-participant", limit, window)
    if not own.allowed:
        raise RateLimited(
            "This participant's share of the budget is used up; retry after the time given.",
            headers=own.headers(),
        )
    shared = enforce(org, group)
    return combined_headers(own, shared)


def combined_headers(*decisions: Decision) -> dict[str, str]:
    """Headers for several budgets at once: every policy listed (the draft allows lists), and the
    `X-RateLimit-*` trio of the one closest to running out."""
    tightest = min(decisions, key=lambda d: (d.remaining, -d.reset_after))
    headers = tightest.headers()
    headers["RateLimit-Policy"] = ", ".join(d.headers()["RateLimit-Policy"] for d in decisions)
    headers["RateLimit"] = ", ".join(d.headers()["RateLimit"] for d in decisions)
    return headers


def reset_script() -> None:
    """Forget the registered script (tests point at fresh servers)."""
    _script.cache_clear()
