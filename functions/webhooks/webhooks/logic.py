"""Webhook management logic: endpoints (URL checked against SSRF), secrets, deliveries, replays."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from verriflo import events, netguard, webhooks
from verriflo import webhook_store as store
from verriflo.auth import OrgContext
from verriflo.errors import Conflict, ValidationFailed
from verriflo.orgs import now

from webhooks import models

MAX_REPLAY_AGE = timedelta(days=30)


def _checked_url(url: str) -> str:
    netguard.resolve(url, allow_private=webhooks.webhook_settings().allow_private_targets)
    return url.strip()


def _info(e: store.Endpoint) -> models.EndpointInfo:
    grace = e.previous_until if e.previous_until and e.previous_until > now() else None
    return models.EndpointInfo(
        id=e.id,
        url=e.url,
        description=e.description,
        event_types=e.event_types,
        enabled=e.enabled,
        disabled_reason=e.disabled_reason,
        previous_secret_valid_until=grace,
        created_at=e.created_at,
        updated_at=e.updated_at,
    )


def _delivery(d: store.Delivery) -> models.DeliveryInfo:
    return models.DeliveryInfo(
        id=d.id,
        event_id=d.event_id,
        event_type=d.event_type,
        status=d.status,
        attempts=d.attempts,
        next_attempt_at=d.next_attempt_at if d.status == "pending" else None,
        last_attempt_at=d.last_attempt_at,
        last_status_code=d.last_status_code,
        last_error=d.last_error,
        created_at=d.created_at,
        finished_at=d.finished_at,
    )


def create(org: OrgContext, body: models.CreateEndpoint) -> models.NewSecret:
    """A new endpoint and its signing secret (shown this once)."""
    types = store.validate_event_types(body.event_types)
    endpoint, secret = store.create_endpoint(org.org_id, _checked_url(body.url), body.description, types)
    return models.NewSecret(endpoint=_info(endpoint), secret=secret)


def list_all(org: OrgContext) -> models.EndpointList:
    """The org's endpoints."""
    return models.EndpointList(
        endpoints=[_info(e) for e in store.list_endpoints(org.org_id)], event_types=list(webhooks.EVENT_TYPES)
    )


def get(org: OrgContext, endpoint_id: str) -> models.EndpointInfo:
    """One endpoint."""
    return _info(store.get_endpoint(org.org_id, endpoint_id))


def update(org: OrgContext, endpoint_id: str, body: models.UpdateEndpoint) -> models.EndpointInfo:
    """Change URL, filter, description or enabled; only the fields given."""
    store.get_endpoint(org.org_id, endpoint_id)
    given = body.model_fields_set
    for field in given:
        if getattr(body, field) is None:
            raise ValidationFailed(f"'{field}' cannot be null.")
    changed = store.update_endpoint(
        org.org_id,
        endpoint_id,
        url=_checked_url(body.url or "") if "url" in given else None,
        event_types=store.validate_event_types(body.event_types or []) if "event_types" in given else None,
        description=body.description,
        enabled=body.enabled,
    )
    return _info(changed)


def rotate(org: OrgContext, endpoint_id: str) -> models.NewSecret:
    """A new secret; the previous one keeps signing (a second signature) for the grace period."""
    endpoint, secret = store.rotate_secret(org.org_id, endpoint_id)
    return models.NewSecret(endpoint=_info(endpoint), secret=secret)


def delete(org: OrgContext, endpoint_id: str) -> models.Deleted:
    """Delete an endpoint and its delivery log."""
    store.delete_endpoint(org.org_id, endpoint_id)
    return models.Deleted(id=endpoint_id)


def send_test(org: OrgContext, endpoint_id: str) -> models.TestSent:
    """Queue a `webhook.test` event for this endpoint only."""
    endpoint = store.get_endpoint(org.org_id, endpoint_id)
    if not endpoint.enabled:
        raise Conflict("The endpoint is disabled; enable it first.")
    event = events.build(
        "webhook.test", org.org_id, {"endpointId": endpoint.id, "message": "A test event from Verriflo."}
    )
    delivery, _ = store.ensure_delivery(endpoint, event)
    store.wake([delivery])
    return models.TestSent(delivery_id=delivery.id, event_id=delivery.event_id)


def deliveries(
    org: OrgContext, endpoint_id: str, *, status: str | None, limit: int, cursor: str | None
) -> models.DeliveryPage:
    """An endpoint's delivery log, newest first."""
    store.get_endpoint(org.org_id, endpoint_id)
    before = None
    if cursor:
        try:
            before = datetime.fromisoformat(cursor)
        except ValueError as exc:
            raise ValidationFailed("The cursor is not valid.") from exc
    found = store.list_deliveries(org.org_id, endpoint_id, status=status, limit=limit + 1, before=before)
    page = found[:limit]
    more = len(found) > limit
    return models.DeliveryPage(
        items=[_delivery(d) for d in page], next_cursor=page[-1].created_at.isoformat() if more else None
    )


def delivery(org: OrgContext, endpoint_id: str, delivery_id: str) -> models.DeliveryDetail:
    """One delivery with its payload and every attempt."""
    d = store.get_delivery(org.org_id, endpoint_id, delivery_id)
    attempts = [
        models.AttemptInfo(
            n=a.n,
            at=a.at,
            duration_ms=a.duration_ms,
            status_code=a.status_code,
            error=a.error,
            response=a.response,
        )
        for a in store.attempts_of(org.org_id, d.id)
    ]
    return models.DeliveryDetail(
        **_delivery(d).model_dump(), payload=json.loads(d.body), attempt_log=attempts
    )


def _replay(
    org: OrgContext, endpoint_id: str, ids: list[str] | None, since: datetime | None
) -> models.Replayed:
    endpoint = store.get_endpoint(org.org_id, endpoint_id)
    if not endpoint.enabled:
        raise Conflict("The endpoint is disabled; enable it first.")
    reopened = store.reopen(org.org_id, endpoint_id, ids, since=since)
    if reopened:
        store.wake(reopened)
    return models.Replayed(replayed=len(reopened), delivery_ids=[d.id for d in reopened[:100]])


def replay_one(org: OrgContext, endpoint_id: str, delivery_id: str) -> models.Replayed:
    """Send a finished delivery again (same webhook-id); a pending one is already on its way: 409."""
    d = store.get_delivery(org.org_id, endpoint_id, delivery_id)
    if d.status == "pending":
        raise Conflict("This delivery is still being attempted.")
    return _replay(org, endpoint_id, [d.id], None)


def replay_since(org: OrgContext, endpoint_id: str, body: models.ReplaySince) -> models.Replayed:
    """Send again every failed delivery created since a time (at most 30 days back)."""
    since = body.since if body.since.tzinfo else body.since.replace(tzinfo=now().tzinfo)
    if since > now():
        raise ValidationFailed("'since' is in the future.")
    if since < now() - MAX_REPLAY_AGE:
        raise ValidationFailed("'since' may be at most 30 days ago.")
    return _replay(org, endpoint_id, None, since)


def event_types() -> models.EventTypeList:
    """The catalogue of events an endpoint can subscribe to."""
    return models.EventTypeList(
        event_types=[models.EventType(type=t, description=d) for t, d in webhooks.EVENT_CATALOGUE.items()]
    )
