"""The dependencies readiness checks: one call each to MongoDB, Redis, S3 and EventBridge."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from pydantic import Field
from verriflo import aws, db
from verriflo import cache as redis_cache
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
