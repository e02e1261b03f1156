"""Dispatcher logic: fan a domain event out to the org's endpoints, attempt deliveries, schedule retries.

Retries: the delivery document holds the schedule (`attempts`, `nextAttemptAt`, see
verriflo.webhooks.RETRY_SCHEDULE_S: at once, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h, 24 h,
about 3.1 days in all). A wait of up to 15 minutes is an SQS message delay; longer waits are woken by
the sweep (every minute), which also re-wakes anything overdue whose message was lost. We chose this
over re-enqueueing a message every 15 minutes (hundreds of empty wake-ups per long wait, per
delivery) and over a Step Functions wait or an EventBridge Scheduler schedule per delivery (a state
machine or schedule per event is costly at volume and one more service to run locally): the
database already holds every delivery's state, so one indexed query a minute is the cheapest clock.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

from verriflo import webhook_store as store
from verriflo import webhooks
from verriflo.errors import NotFound
from verriflo.observability import logger
from verriflo.orgs import now

from webhook_dispatcher import sender

LEASE = timedelta(seconds=90)  # longer than one attempt can take; a crashed attempt frees itself
SQS_MAX_DELAY = timedelta(minutes=15)


def handle_message(body: dict[str, Any]) -> None:
    """One SQS message: a domain event from EventBridge, or a wake-up for one delivery."""
    if "detail-type" in body:
        fan_out(body.get("detail") or {})
    elif "deliveryId" in body:
        wake(str(body["deliveryId"]), int(body.get("forAttempt", 0)))
    else:
        logger.warning("dispatcher.unknown_message", extra={"keys": sorted(body)[:10]})


def fan_out(event: dict[str, Any]) -> list[store.Delivery]:
    """Create the event's delivery to each subscribed endpoint (once per event) and attempt the new ones."""
    org_id, event_type = event.get("orgId"), event.get("type")
    if not org_id or not event_type or not event.get("id"):
        logger.warning("dispatcher.malformed_event", extra={"event_id": event.get("id")})
        return []
    fresh = []
    data = event.get("data") if isinstance(event.get("data"), dict) else None
    for endpoint in store.endpoints_for(str(org_id), str(event_type), data):
        delivery, created = store.ensure_delivery(endpoint, event)
        # A repeat of the event (EventBridge or SQS delivering twice) finds the same delivery; it is
        # attempted here only if it never was (the first run died before its first attempt).
        if created or (delivery.status == "pending" and delivery.attempts == 0):
            fresh.append(delivery)
    attempt_all(fresh)
    return fresh


def wake(delivery_id: str, for_attempt: int) -> None:
    """A wake-up message: attempt the delivery if it is still waiting for this attempt."""
    delivery = store.find_delivery(delivery_id)
    if delivery is None or delivery.status != "pending" or delivery.attempts != for_attempt:
        return  # finished, deleted, or a stale duplicate message
    attempt_all([delivery])


def attempt_all(deliveries: list[store.Delivery]) -> None:
    """Attempt several deliveries at once, so one slow endpoint does not hold up the others."""
    if len(deliveries) == 1:
        attempt(deliveries[0])
    elif deliveries:
        with ThreadPoolExecutor(min(len(deliveries), webhooks.webhook_settings().concurrency)) as pool:
            list(pool.map(attempt, deliveries))


def attempt(delivery: store.Delivery) -> str | None:
    """One attempt of a due delivery; returns its resulting status (None if someone else had it)."""
    at = now()
    claimed = store.claim(delivery.id, delivery.attempts, at, LEASE)
    if claimed is None:
        return None
    try:
        endpoint = store.get_endpoint(claimed.org_id, claimed.endpoint_id)
    except NotFound:
        store.finish_without_attempt(claimed, "endpoint deleted")
        return "failed"
    if not endpoint.enabled:
        store.finish_without_attempt(
            claimed, f"endpoint disabled: {endpoint.disabled_reason or 'by the org'}"
        )
        return "failed"
    headers = webhooks.sign(endpoint.signing_secrets(at), claimed.id, at, claimed.body)
    outcome = sender.send(endpoint.url, headers, claimed.body)
    n = claimed.attempts + 1
    record = store.Attempt(
        delivery_id=claimed.id,
        n=n,
        at=at,
        duration_ms=outcome.duration_ms,
        status_code=outcome.status_code,
        error=outcome.error,
        response=outcome.response,
    )
    log = {
        "delivery_id": claimed.id,
        "org_id": claimed.org_id,
        "endpoint_id": endpoint.id,
        "attempt": n,
        "status_code": outcome.status_code,
        "error": outcome.error,
        "duration_ms": outcome.duration_ms,
    }
    if outcome.ok:
        store.record_attempt(claimed, record, status="succeeded", next_at=None)
        logger.info("dispatcher.delivered", extra=log)
        return "succeeded"
    if outcome.status_code == 410:
        # The receiver says the endpoint is gone for good: stop sending; the delivery stays replayable.
        store.disable_endpoint(endpoint.org_id, endpoint.id, "receiver answered 410 Gone")
        store.record_attempt(claimed, record, status="failed", next_at=None)
        logger.warning("dispatcher.endpoint_gone", extra=log)
        return "failed"
    delay = webhooks.next_delay(n)
    if delay is None:
        store.record_attempt(claimed, record, status="failed", next_at=None)
        logger.warning("dispatcher.dead_lettered", extra=log)
        return "failed"
    store.record_attempt(claimed, record, status="pending", next_at=at + delay)
    logger.info("dispatcher.retry_scheduled", extra=log | {"retry_in_s": int(delay.total_seconds())})
    if delay <= SQS_MAX_DELAY:
        pending = claimed.model_copy(update={"attempts": n, "next_attempt_at": at + delay})
        store.wake([pending], at=at)
    return "pending"


def sweep() -> int:
    """Wake deliveries due within SQS's delay limit, and any overdue one whose wake-up was lost."""
    at = now()
    due = store.due_within(at, SQS_MAX_DELAY) + store.overdue(at, timedelta(minutes=2))
    unique = list({d.id: d for d in due}.values())
    if unique:
        store.wake(unique, at=at)
    return len(unique)
