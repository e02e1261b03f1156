"""The dependencies readiness checks: one call each to MongoDB, Redis, S3 and EventBridge."""

from __future__ import annotations

from collections.abc import Callable

from verriflo import aws, db
from verriflo import cache as redis_cache
from verriflo.settings import event_settings

from health.config import health_settings


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
