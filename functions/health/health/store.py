"""The dependencies readiness checks: one cheap read-only call to each service the functions use.

MongoDB, Redis, S3, EventBridge, LiveKit (ListRooms with the stack's key), Secrets Manager (the
stack's secrets described, never read, except LiveKit's which the LiveKit call needs), SQS (the
queues) and Step Functions (the state machines). Each call has a short timeout and no retries, so a
dead dependency is reported quickly instead of holding the answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import cache
from typing import Any

from verriflo import cache as redis_cache
from verriflo import db
from verriflo.errors import ServiceUnavailable
from verriflo.secrets import get_secret
from verriflo.settings import event_settings

from health.config import health_settings


class NotConfigured(Exception):
    """The function was not told where the dependency is (a deployment error: reported as down)."""


@cache
def _client(service: str) -> Any:
    import boto3
    from botocore.config import Config

    timeout = health_settings().check_timeout_s
    return boto3.session.Session().client(
        service,
        config=Config(connect_timeout=timeout, read_timeout=timeout, retries={"max_attempts": 1}),
    )


def reset() -> None:
    """Forget the clients and settings (tests switch endpoints)."""
    _client.cache_clear()
    health_settings.cache_clear()


def _each(values: list[str], what: str) -> list[str]:
    if not values:
        raise NotConfigured(what)
    return values


def _s3() -> None:
    _client("s3").head_bucket(Bucket=health_settings().media_bucket)


def _eventbridge() -> None:
    _client("events").describe_event_bus(Name=event_settings().event_bus_name)


def _secrets() -> None:
    for name in _each(health_settings().secret_names, "secrets"):
        _client("secretsmanager").describe_secret(SecretId=name)


def _sqs() -> None:
    for url in _each(health_settings().queue_urls, "queues"):
        _client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])


def _stepfunctions() -> None:
    for arn in _each(health_settings().state_machine_arns, "state machines"):
        _client("stepfunctions").describe_state_machine(stateMachineArn=arn)


def _livekit_credentials() -> tuple[str, str]:
    import json

    settings = health_settings()
    if not settings.livekit_url or not settings.livekit_secret_name:
        raise NotConfigured("livekit")
    try:
        value = json.loads(get_secret(settings.livekit_secret_name))
        return str(value["apiKey"]), str(value["apiSecret"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ServiceUnavailable("The LiveKit credentials are not configured.") from exc


async def _list_rooms(url: str, key: str, secret: str, timeout: float) -> None:
    import aiohttp
    from livekit.api import ListRoomsRequest, LiveKitAPI

    api = LiveKitAPI(url, key, secret, failover=False, timeout=aiohttp.ClientTimeout(total=timeout))
    try:
        await api.room.list_rooms(ListRoomsRequest(names=["verriflo-readiness-probe"]))
    finally:
        await api.aclose()


def _livekit() -> None:
    key, secret = _livekit_credentials()
    settings = health_settings()
    # A loop of its own, not asyncio.run(): that would leave the thread without a current loop.
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(_list_rooms(settings.livekit_url, key, secret, settings.check_timeout_s))
    finally:
        loop.close()


CHECKS: dict[str, Callable[[], object]] = {
    "mongodb": db.ping,
    "redis": redis_cache.ping,
    "s3": _s3,
    "eventbridge": _eventbridge,
    "livekit": _livekit,
    "secretsmanager": _secrets,
    "sqs": _sqs,
    "stepfunctions": _stepfunctions,
}
