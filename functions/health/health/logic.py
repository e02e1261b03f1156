"""Liveness and readiness checks, run concurrently so readiness costs the slowest check, not the sum."""

# No `from __future__ import annotations`: pydantic would evaluate each string annotation as it
# creates every model class below, a cost every cold start pays.

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import cache
from typing import Literal

from pydantic import Field
from verriflo import aws, db
from verriflo import cache as redis_cache
from verriflo.models import ApiModel
from verriflo.openapi import load_document
from verriflo.orgs import now
from verriflo.settings import EnvSettings, SettingsConfigDict, event_settings


class HealthSettings(EnvSettings):
    """What readiness checks besides the stores."""

    model_config = SettingsConfigDict(extra="ignore")

    media_bucket: str = "verriflo-media"
    check_timeout_s: float = Field(default=3.0, gt=0)


@cache
def health_settings() -> HealthSettings:
    """The health settings, read once per process."""
    return HealthSettings()


class Liveness(ApiModel):
    status: Literal["ok"] = "ok"
    time: datetime


class Check(ApiModel):
    name: str
    status: Literal["up", "down"]
    latency_ms: float
    error: str | None = None


class Readiness(ApiModel):
    ready: bool
    checks: list[Check]


def liveness() -> Liveness:
    """Always ok while the function runs."""
    return Liveness(time=now())


def _s3() -> None:
    aws.client("s3").head_bucket(Bucket=health_settings().media_bucket)


def _eventbridge() -> None:
    aws.client("events").describe_event_bus(Name=event_settings().event_bus_name)


CHECKS: dict[str, Callable[[], object]] = {
    "mongodb": db.ping,
    "redis": redis_cache.ping,
    "s3": _s3,
    "eventbridge": _eventbridge,
}


def _run(name: str, check: Callable[[], object]) -> Check:
    start = time.perf_counter()
    try:
        check()
    except Exception as exc:  # noqa: BLE001 - a health check reports any failure as "down"
        return Check(
            name=name,
            status="down",
            latency_ms=round((time.perf_counter() - start) * 1000, 2),
            error=type(exc).__name__,
        )
    return Check(name=name, status="up", latency_ms=round((time.perf_counter() - start) * 1000, 2))


def readiness() -> Readiness:
    """Each dependency's status and latency."""
    with ThreadPoolExecutor(max_workers=len(CHECKS)) as pool:
        futures = [pool.submit(_run, name, check) for name, check in CHECKS.items()]
        checks = [f.result(timeout=health_settings().check_timeout_s + 5) for f in futures]
    return Readiness(ready=all(c.status == "up" for c in checks), checks=checks)


def openapi_document() -> dict:
    """The API's OpenAPI document."""
    return load_document()
