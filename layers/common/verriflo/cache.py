"""Redis access: one lazily created client per process, with driver failures mapped to 503."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import TYPE_CHECKING

from verriflo.errors import ServiceUnavailable
from verriflo.settings import api_settings, store_settings

if TYPE_CHECKING:
    from redis import Redis


@cache
def redis_client() -> Redis:
    """The process-wide Redis client (redis-py pools connections and is thread-safe)."""
    from redis import Redis

    settings = store_settings()
    return Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_timeout_s,
        socket_connect_timeout=settings.redis_timeout_s,
        health_check_interval=30,
        decode_responses=True,
    )


@contextmanager
def unavailable_on_failure() -> Iterator[None]:
    """Turn 'cannot reach Redis' into ServiceUnavailable, so callers answer 503, not 500."""
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError

    try:
        yield
    except (RedisConnectionError, RedisTimeoutError) as exc:
        raise ServiceUnavailable(
            "The cache is unavailable; retry shortly.",
            headers={"Retry-After": str(api_settings().retry_after_s)},
        ) from exc


def ping() -> bool:
    """Round trip to the server (health checks)."""
    with unavailable_on_failure():
        return bool(redis_client().ping())


def reset_client() -> None:
    """Drop the cached client (tests point at fresh servers)."""
    if redis_client.cache_info().currsize:
        redis_client().close()
    redis_client.cache_clear()
