"""Domain events on the EventBridge bus: `detail-type` is the dotted event name of API.md."""

from __future__ import annotations

import json
import uuid
from typing import Any

from verriflo import aws
from verriflo.errors import ServiceUnavailable
from verriflo.observability import logger
from verriflo.orgs import now
from verriflo.settings import event_settings


def build(name: str, org_id: str, data: dict[str, Any], *, event_id: str | None = None) -> dict[str, Any]:
    """The event body every consumer sees (and webhooks deliver)."""
    return {
        "id": event_id or f"evt_{uuid.uuid4().hex}",
        "type": name,
        "orgId": org_id,
        "createdAt": now().isoformat(),
        "data": data,
    }


def publish(
    name: str, org_id: str, data: dict[str, Any], *, event_id: str | None = None, source: str | None = None
) -> dict[str, Any]:
    """Publish one domain event; returns the event as published."""
    return publish_many([build(name, org_id, data, event_id=event_id)], source=source)[0]


def publish_many(events: list[dict[str, Any]], *, source: str | None = None) -> list[dict[str, Any]]:
    """Publish already-built events (in batches of ten, the PutEvents limit)."""
    from botocore.exceptions import BotoCoreError, ClientError

    settings = event_settings()
    client = aws.client("events")
    for start in range(0, len(events), 10):
        batch = events[start : start + 10]
        entries = [
            {
                "Source": source or settings.event_source,
                "DetailType": event["type"],
                "Detail": json.dumps(event, default=str),
                "EventBusName": settings.event_bus_name,
            }
            for event in batch
        ]
        try:
            result = client.put_events(Entries=entries)
        except (BotoCoreError, ClientError) as exc:
            raise ServiceUnavailable("The event bus is unavailable; retry shortly.") from exc
        if result.get("FailedEntryCount"):
            failed = [e.get("ErrorCode") for e in result["Entries"] if e.get("ErrorCode")]
            logger.error("events.publish_failed", extra={"codes": failed})
            raise ServiceUnavailable("Some events could not be published; retry shortly.")
    return events
