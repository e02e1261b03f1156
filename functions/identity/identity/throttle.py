"""Sign-in throttling in Redis: locks per (account, source address), never per account alone.

Locking an account after N wrong passwords from anywhere lets anyone lock anyone out, so:
- **Per (account, source).** Every attempt is counted before its password is checked (so a burst
  of parallel guesses cannot all slip past the count); after `pair_free` attempts without a
  success, that pair is locked, for `lock_base_s` and then twice as long after each further wrong
  password (at most `lock_max_s`). A correct password clears the pair. A pair's count is forgotten
  `pair_memory_s` after its last attempt.
- **Per account, a much higher ceiling that only slows.** Past `account_ceiling` wrong passwords
  within `account_window_s` (from all sources), every source gets only `pair_free_under_attack`
  tries before its lock: guessing slows down everywhere, but a correct password from a source that
  is not locked still signs in, so strangers cannot lock the owner out.
- **Per source, across accounts.** Past `source_ceiling` wrong passwords within `source_window_s`,
  the source is locked for the rest of that window (password spraying across many accounts); this
  only ever stops that source.

Each decision is one Lua script (atomic across concurrent Lambda instances). Times come from `now()`
(passed to the script, so tests move the clock instead of sleeping); Redis expiry only collects
garbage. Accounts are keyed by a hash of the email (no addresses in Redis), IPv6 sources by /64.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

from verriflo.cache import redis_client, unavailable_on_failure


@dataclass(frozen=True, slots=True)
class Policy:
    """How many sign-in attempts are allowed, and how long locks last."""

    pair_free: int = 10
    pair_free_under_attack: int = 3
    lock_base_s: int = 60
    lock_max_s: int = 3600
    pair_memory_s: int = 86_400
    account_ceiling: int = 100
    account_window_s: int = 3600
    source_ceiling: int = 100
    source_window_s: int = 3600


POLICY = Policy()

# KEYS: pair, account, source. ARGV: now_ms, then the policy in ms / counts (see _args).
# Returns 0 when the attempt may proceed (it is counted), else the ms until it may be retried.
_ATTEMPT = """
local now = tonumber(ARGV[1])
local pair_until = tonumber(redis.call('HGET', KEYS[1], 'until') or '0')
local source_until = tonumber(redis.call('HGET', KEYS[3], 'until') or '0')
local wait = math.max(pair_until - now, source_until - now, 0)
if wait > 0 then return wait end

local free, free_attack = tonumber(ARGV[2]), tonumber(ARGV[3])
local base, max_lock, memory = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local acct_ceiling, acct_window = tonumber(ARGV[7]), tonumber(ARGV[8])
local src_ceiling, src_window = tonumber(ARGV[9]), tonumber(ARGV[10])

local function windowed(key, window)
  local since = tonumber(redis.call('HGET', key, 'since') or '-1')
  if since < 0 or now - since >= window then
    redis.call('HSET', key, 'n', 0, 'since', now)
    since = now
  end
  redis.call('PEXPIRE', key, window * 2)
  return redis.call('HINCRBY', key, 'n', 1), since
end

local account_n = windowed(KEYS[2], acct_window)
local source_n, source_since = windowed(KEYS[3], src_window)
if source_n >= src_ceiling then redis.call('HSET', KEYS[3], 'until', source_since + src_window) end

local last = tonumber(redis.call('HGET', KEYS[1], 'last') or '-1')
if last < 0 or now - last >= memory then redis.call('HSET', KEYS[1], 'n', 0) end
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('HSET', KEYS[1], 'last', now)
local allowed = free
if account_n > acct_ceiling then allowed = free_attack end
if n >= allowed then
  local lock = math.min(base * 2 ^ (n - allowed), max_lock)
  redis.call('HSET', KEYS[1], 'until', now + lock)
end
redis.call('PEXPIRE', KEYS[1], memory + max_lock)
return 0
"""

# A correct password: the pair starts afresh, and the attempt was not a wrong password after all.
_SUCCEEDED = """
redis.call('DEL', KEYS[1])
for i = 2, 3 do
  if tonumber(redis.call('HGET', KEYS[i], 'n') or '0') > 0 then redis.call('HINCRBY', KEYS[i], 'n', -1) end
end
return 0
"""


def now() -> float:
    """Epoch seconds (tests replace this to move time without sleeping)."""
    return time.time()


@cache
def _scripts() -> tuple[Any, Any]:
    # Each call passes the current client, so these survive a client reset (tests).
    client = redis_client()
    return client.register_script(_ATTEMPT), client.register_script(_SUCCEEDED)


def source_of(address: str) -> str:
    """The throttled unit of a source address: the address itself, or its /64 for IPv6."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def _keys(email: str, source: str) -> list[str]:
    account = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    where = source_of(source)
    return [f"login:pair:{account}:{where}", f"login:acct:{account}", f"login:src:{where}"]


def _args(policy: Policy) -> list[int]:
    return [
        policy.pair_free,
        policy.pair_free_under_attack,
        policy.lock_base_s * 1000,
        policy.lock_max_s * 1000,
        policy.pair_memory_s * 1000,
        policy.account_ceiling,
        policy.account_window_s * 1000,
        policy.source_ceiling,
        policy.source_window_s * 1000,
    ]


def attempt(email: str, source: str, policy: Policy | None = None) -> int:
    """Count a sign-in attempt; 0 if it may proceed, else the seconds until this source may retry."""
    policy = policy or POLICY
    script, _ = _scripts()
    with unavailable_on_failure():
        wait_ms = int(
            script(keys=_keys(email, source), args=[int(now() * 1000), *_args(policy)], client=redis_client())
        )
    return math.ceil(wait_ms / 1000) if wait_ms > 0 else 0


def succeeded(email: str, source: str) -> None:
    """A correct password from `source`: its pair is unlocked and the attempt not held against anyone."""
    _, script = _scripts()
    with unavailable_on_failure():
        script(keys=_keys(email, source), args=[], client=redis_client())
