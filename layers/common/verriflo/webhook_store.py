"""Webhook endpoints, deliveries and attempts in MongoDB, and the dispatcher's SQS queue.

Every read and write names the org; another org's ids are simply not found. A delivery's id is
derived from (endpoint, event), so the same event published twice maps to one delivery. Deliveries
carry their own schedule (`nextAttemptAt`, `attempts`); SQS messages only wake the dispatcher, and a
message whose `forAttempt` no longer matches is stale and ignored.
"""

# No `from __future__ import annotations`: pydantic would evaluate each string annotation as it
# creates every model class below, a cost every cold start pays.

import json
from datetime import datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from verriflo import aws, db, webhooks
from verriflo.errors import Conflict, NotFound, ServiceUnavailable, ValidationFailed
from verriflo.orgs import new_id, now

ENDPOINTS, DELIVERIES, ATTEMPTS = "webhook_endpoints", "webhook_deliveries", "webhook_attempts"

DeliveryStatus = Literal["pending", "succeeded", "failed"]


def _indexes_endpoints():
    from pymongo import ASCENDING, IndexModel

    return [IndexModel([("orgId", ASCENDING), ("createdAt", ASCENDING)])]


def _indexes_deliveries():
    from pymongo import ASCENDING, DESCENDING, IndexModel

    return [
        IndexModel([("orgId", ASCENDING), ("endpointId", ASCENDING), ("createdAt", DESCENDING)]),
        IndexModel([("status", ASCENDING), ("nextAttemptAt", ASCENDING)]),
    ]


def _indexes_attempts():
    from pymongo import ASCENDING, IndexModel

    return [IndexModel([("deliveryId", ASCENDING), ("n", ASCENDING)])]


db.register_indexes(ENDPOINTS, _indexes_endpoints)
db.register_indexes(DELIVERIES, _indexes_deliveries)
db.register_indexes(ATTEMPTS, _indexes_attempts)


class Endpoint(BaseModel):
    """A receiver URL of one org (as stored, secrets sealed)."""

    model_config = ConfigDict(defer_build=True, populate_by_name=True)

    id: str = Field(alias="_id")
    org_id: str = Field(alias="orgId")
    url: str
    description: str = ""
    event_types: list[str] = Field(default_factory=list, alias="eventTypes")
    enabled: bool = True
    disabled_reason: str | None = Field(default=None, alias="disabledReason")
    secret_sealed: str = Field(alias="secretSealed", repr=False)
    previous_sealed: str | None = Field(default=None, alias="previousSealed", repr=False)
    previous_until: datetime | None = Field(default=None, alias="previousUntil")
    created_at: datetime = Field(alias="createdAt")
    updated_at: datetime = Field(alias="updatedAt")

    def signing_secrets(self, at: datetime) -> list[str]:
        """The secrets that sign a delivery now: the current one, and the previous within its grace."""
        live = [webhooks.unseal(self.secret_sealed, self.id)]
        if self.previous_sealed and self.previous_until and self.previous_until > at:
            live.append(webhooks.unseal(self.previous_sealed, self.id))
        return live

    def wants(self, event_type: str, data: dict[str, Any] | None = None) -> bool:
        """Whether this endpoint subscribes to the event (no filter: everything); `data` is the
        event's (webhooks.subscribed_as: a recording's `video.ready` also goes to `recording.ready`)."""
        return not self.event_types or any(
            name in self.event_types for name in webhooks.subscribed_as(event_type, data)
        )


class Delivery(BaseModel):
    """One event on its way to one endpoint."""

    model_config = ConfigDict(defer_build=True, populate_by_name=True)

    id: str = Field(alias="_id")
    org_id: str = Field(alias="orgId")
    endpoint_id: str = Field(alias="endpointId")
    event_id: str = Field(alias="eventId")
    event_type: str = Field(alias="eventType")
    body: str
    status: DeliveryStatus = "pending"
    attempts: int = 0
    next_attempt_at: datetime | None = Field(default=None, alias="nextAttemptAt")
    last_attempt_at: datetime | None = Field(default=None, alias="lastAttemptAt")
    last_status_code: int | None = Field(default=None, alias="lastStatusCode")
    last_error: str | None = Field(default=None, alias="lastError")
    created_at: datetime = Field(alias="createdAt")
    finished_at: datetime | None = Field(default=None, alias="finishedAt")


class Attempt(BaseModel):
    """One HTTP attempt of a delivery."""

    model_config = ConfigDict(defer_build=True, populate_by_name=True)

    delivery_id: str = Field(alias="deliveryId")
    n: int
    at: datetime
    duration_ms: int = Field(alias="durationMs")
    status_code: int | None = Field(default=None, alias="statusCode")
    error: str | None = None
    response: str | None = None


# --- endpoints ------------------------------------------------------------------------------------


def create_endpoint(org_id: str, url: str, description: str, event_types: list[str]) -> tuple[Endpoint, str]:
    """Store a new endpoint; returns it and its secret (the only time the secret leaves this module)."""
    with db.unavailable_on_failure():
        if (
            db.collection(ENDPOINTS).count_documents({"orgId": org_id})
            >= webhooks.webhook_settings().max_endpoints
        ):
            raise Conflict("This organisation has the maximum number of webhook endpoints.")
    endpoint_id, secret, at = new_id("we"), webhooks.new_secret(), now()
    endpoint = Endpoint(
        _id=endpoint_id,
        orgId=org_id,
        url=url,
        description=description,
        eventTypes=event_types,
        secretSealed=webhooks.seal(secret, endpoint_id),
        createdAt=at,
        updatedAt=at,
    )
    with db.unavailable_on_failure():
        db.collection(ENDPOINTS).insert_one(endpoint.model_dump(by_alias=True))
    return endpoint, secret


def get_endpoint(org_id: str, endpoint_id: str) -> Endpoint:
    """One of the org's endpoints, or NotFound."""
    with db.unavailable_on_failure():
        doc = db.collection(ENDPOINTS).find_one({"_id": endpoint_id, "orgId": org_id})
    if doc is None:
        raise NotFound("Webhook endpoint not found.")
    return Endpoint.model_validate(doc)


def list_endpoints(org_id: str) -> list[Endpoint]:
    """The org's endpoints, oldest first."""
    with db.unavailable_on_failure():
        return [
            Endpoint.model_validate(d)
            for d in db.collection(ENDPOINTS).find({"orgId": org_id}).sort("createdAt", 1)
        ]


def endpoints_for(org_id: str, event_type: str, data: dict[str, Any] | None = None) -> list[Endpoint]:
    """The org's enabled endpoints subscribed to the event `event_type` with `data`."""
    with db.unavailable_on_failure():
        docs = db.collection(ENDPOINTS).find({"orgId": org_id, "enabled": True})
        return [e for e in (Endpoint.model_validate(d) for d in docs) if e.wants(event_type, data)]


def update_endpoint(
    org_id: str,
    endpoint_id: str,
    *,
    url: str | None = None,
    event_types: list[str] | None = None,
    description: str | None = None,
    enabled: bool | None = None,
) -> Endpoint:
    """Change the given fields (None: unchanged) of one of the org's endpoints."""
    given = {"url": url, "eventTypes": event_types, "description": description, "enabled": enabled}
    fields = {name: value for name, value in given.items() if value is not None} | {"updatedAt": now()}
    if enabled is True:
        fields["disabledReason"] = None
    with db.unavailable_on_failure():
        result = db.collection(ENDPOINTS).update_one({"_id": endpoint_id, "orgId": org_id}, {"$set": fields})
    if result.matched_count == 0:
        raise NotFound("Webhook endpoint not found.")
    return get_endpoint(org_id, endpoint_id)


def rotate_secret(org_id: str, endpoint_id: str) -> tuple[Endpoint, str]:
    """A new secret; the old one keeps signing for the grace period."""
    current = get_endpoint(org_id, endpoint_id)
    secret, at = webhooks.new_secret(), now()
    grace = timedelta(hours=webhooks.webhook_settings().rotation_grace_h)
    update = {
        "secretSealed": webhooks.seal(secret, endpoint_id),
        "previousSealed": current.secret_sealed,
        "previousUntil": at + grace,
        "updatedAt": at,
    }
    with db.unavailable_on_failure():
        # Conditional on the secret we read, so two rotations racing cannot lose one's previous secret.
        result = db.collection(ENDPOINTS).update_one(
            {"_id": endpoint_id, "orgId": org_id, "secretSealed": current.secret_sealed}, {"$set": update}
        )
    if result.matched_count == 0:
        raise Conflict("The secret was rotated at the same moment; try again.")
    return get_endpoint(org_id, endpoint_id), secret


def disable_endpoint(org_id: str, endpoint_id: str, reason: str) -> None:
    """Stop delivering to an endpoint (a 410 from the receiver, or the org's choice)."""
    with db.unavailable_on_failure():
        db.collection(ENDPOINTS).update_one(
            {"_id": endpoint_id, "orgId": org_id},
            {"$set": {"enabled": False, "disabledReason": reason, "updatedAt": now()}},
        )


def delete_endpoint(org_id: str, endpoint_id: str) -> None:
    """Delete an endpoint with its deliveries and attempts."""
    with db.unavailable_on_failure():
        result = db.collection(ENDPOINTS).delete_one({"_id": endpoint_id, "orgId": org_id})
        if result.deleted_count == 0:
            raise NotFound("Webhook endpoint not found.")
        db.collection(DELIVERIES).delete_many({"orgId": org_id, "endpointId": endpoint_id})
        db.collection(ATTEMPTS).delete_many({"orgId": org_id, "endpointId": endpoint_id})


# --- deliveries -----------------------------------------------------------------------------------


def ensure_delivery(endpoint: Endpoint, event: dict[str, Any]) -> tuple[Delivery, bool]:
    """The delivery of `event` to `endpoint`, created if new; (delivery, created)."""
    from pymongo.errors import DuplicateKeyError

    at = now()
    delivery = Delivery(
        _id=webhooks.delivery_id(endpoint.id, str(event["id"])),
        orgId=endpoint.org_id,
        endpointId=endpoint.id,
        eventId=str(event["id"]),
        eventType=str(event["type"]),
        body=webhooks.body_of(event),
        nextAttemptAt=at,
        createdAt=at,
    )
    with db.unavailable_on_failure():
        try:
            db.collection(DELIVERIES).insert_one(delivery.model_dump(by_alias=True))
            return delivery, True
        except DuplicateKeyError:
            return Delivery.model_validate(db.collection(DELIVERIES).find_one({"_id": delivery.id})), False


def find_delivery(delivery_id: str) -> Delivery | None:
    """A delivery by id (the dispatcher's messages carry ids it created)."""
    with db.unavailable_on_failure():
        doc = db.collection(DELIVERIES).find_one({"_id": delivery_id})
    return Delivery.model_validate(doc) if doc else None


def get_delivery(org_id: str, endpoint_id: str, delivery_id: str) -> Delivery:
    """One delivery of one of the org's endpoints, or NotFound."""
    with db.unavailable_on_failure():
        doc = db.collection(DELIVERIES).find_one(
            {"_id": delivery_id, "orgId": org_id, "endpointId": endpoint_id}
        )
    if doc is None:
        raise NotFound("Delivery not found.")
    return Delivery.model_validate(doc)


def list_deliveries(
    org_id: str, endpoint_id: str, *, status: str | None, limit: int, before: datetime | None
) -> list[Delivery]:
    """An endpoint's deliveries, newest first, created before `before`."""
    query: dict[str, Any] = {"orgId": org_id, "endpointId": endpoint_id}
    if status:
        query["status"] = status
    if before:
        query["createdAt"] = {"$lt": before}
    with db.unavailable_on_failure():
        docs = db.collection(DELIVERIES).find(query).sort([("createdAt", -1), ("_id", -1)]).limit(limit)
        return [Delivery.model_validate(d) for d in docs]


def attempts_of(org_id: str, delivery_id: str) -> list[Attempt]:
    """Every attempt of a delivery, in order."""
    with db.unavailable_on_failure():
        docs = db.collection(ATTEMPTS).find({"orgId": org_id, "deliveryId": delivery_id}).sort("n", 1)
        return [Attempt.model_validate(d) for d in docs]


def claim(delivery_id: str, for_attempt: int, at: datetime, lease: timedelta) -> Delivery | None:
    """Take a due delivery for one attempt (None: not due, already taken, finished or stale)."""
    from pymongo import ReturnDocument

    with db.unavailable_on_failure():
        doc = db.collection(DELIVERIES).find_one_and_update(
            {
                "_id": delivery_id,
                "status": "pending",
                "attempts": for_attempt,
                "nextAttemptAt": {"$lte": at},
                "$or": [{"lockedUntil": None}, {"lockedUntil": {"$lte": at}}],
            },
            {"$set": {"lockedUntil": at + lease}},
            return_document=ReturnDocument.AFTER,
        )
    return Delivery.model_validate(doc) if doc else None


def record_attempt(
    delivery: Delivery, attempt: Attempt, *, status: DeliveryStatus, next_at: datetime | None
) -> None:
    """Store an attempt and move the delivery on (released, with its next time or its end)."""
    fields: dict[str, Any] = {
        "status": status,
        "attempts": attempt.n,
        "lastAttemptAt": attempt.at,
        "lastStatusCode": attempt.status_code,
        "lastError": attempt.error,
        "nextAttemptAt": next_at,
        "lockedUntil": None,
        "finishedAt": None if status == "pending" else now(),
    }
    with db.unavailable_on_failure():
        # Keyed by (delivery, n): when the delivery's update below fails, the attempt is made again
        # with the same n, and its log replaces the first one's instead of showing attempt n twice.
        db.collection(ATTEMPTS).replace_one(
            {"_id": f"{delivery.id}:{attempt.n}"},
            attempt.model_dump(by_alias=True)
            | {"orgId": delivery.org_id, "endpointId": delivery.endpoint_id},
            upsert=True,
        )
        db.collection(DELIVERIES).update_one(
            {"_id": delivery.id, "attempts": attempt.n - 1}, {"$set": fields}
        )


def finish_without_attempt(delivery: Delivery, reason: str) -> None:
    """End a delivery that cannot be attempted (its endpoint was disabled); it stays replayable."""
    with db.unavailable_on_failure():
        db.collection(DELIVERIES).update_one(
            {"_id": delivery.id, "status": "pending"},
            {
                "$set": {
                    "status": "failed",
                    "lastError": reason,
                    "lockedUntil": None,
                    "finishedAt": now(),
                    "nextAttemptAt": None,
                }
            },
        )


def reopen(
    org_id: str, endpoint_id: str, delivery_ids: list[str] | None = None, *, since: datetime | None = None
) -> list[Delivery]:
    """Make finished deliveries due again (replay): one by id, or every failed one since a time."""
    query: dict[str, Any] = {"orgId": org_id, "endpointId": endpoint_id, "status": {"$ne": "pending"}}
    if delivery_ids is not None:
        query["_id"] = {"$in": delivery_ids}
    else:
        query["status"] = "failed"
        query["createdAt"] = {"$gte": since}
    at = now()
    with db.unavailable_on_failure():
        ids = [d["_id"] for d in db.collection(DELIVERIES).find(query, {"_id": 1}).limit(10_000)]
        db.collection(DELIVERIES).update_many(
            {"_id": {"$in": ids}, "status": {"$ne": "pending"}},
            {
                "$set": {"status": "pending", "nextAttemptAt": at, "finishedAt": None, "lockedUntil": None},
                "$inc": {"replays": 1},
            },
        )
        docs = db.collection(DELIVERIES).find({"_id": {"$in": ids}})
        return [Delivery.model_validate(d) for d in docs]


def overdue(at: datetime, grace: timedelta, limit: int = 500) -> list[Delivery]:
    """Pending deliveries due before `at - grace` that no message woke (or whose waker died)."""
    with db.unavailable_on_failure():
        docs = (
            db.collection(DELIVERIES)
            .find(
                {
                    "status": "pending",
                    "nextAttemptAt": {"$lte": at - grace},
                    "$or": [{"lockedUntil": None}, {"lockedUntil": {"$lte": at}}],
                }
            )
            .limit(limit)
        )
        return [Delivery.model_validate(d) for d in docs]


def due_within(at: datetime, horizon: timedelta, limit: int = 500) -> list[Delivery]:
    """Pending deliveries due in the next `horizon` whose wake-up has not been sent."""
    with db.unavailable_on_failure():
        docs = (
            db.collection(DELIVERIES)
            .find(
                {
                    "status": "pending",
                    "nextAttemptAt": {"$lte": at + horizon},
                    "$expr": {"$ne": ["$wokenFor", "$attempts"]},
                }
            )
            .limit(limit)
        )
        return [Delivery.model_validate(d) for d in docs]


# --- the queue ------------------------------------------------------------------------------------


def wake(deliveries: list[Delivery], *, at: datetime | None = None) -> None:
    """Send one SQS message per delivery, delayed until it is due (at most SQS's 15 minutes)."""
    from botocore.exceptions import BotoCoreError, ClientError

    queue = webhooks.webhook_settings().queue_url
    if not queue:
        raise ServiceUnavailable("The webhook queue is not configured.")
    at = at or now()
    client = aws.client("sqs")
    for start in range(0, len(deliveries), 10):
        batch = deliveries[start : start + 10]
        entries = []
        for i, d in enumerate(batch):
            wait = 0 if d.next_attempt_at is None else (d.next_attempt_at - at).total_seconds()
            entries.append(
                {
                    "Id": str(i),
                    "DelaySeconds": int(min(max(wait, 0), 900)),
                    "MessageBody": json.dumps({"deliveryId": d.id, "forAttempt": d.attempts}),
                }
            )
        try:
            result = client.send_message_batch(QueueUrl=queue, Entries=entries)
        except (BotoCoreError, ClientError) as exc:
            raise ServiceUnavailable("The webhook queue is unavailable; retry shortly.") from exc
        if result.get("Failed"):
            raise ServiceUnavailable("Some deliveries could not be queued; retry shortly.")
        with db.unavailable_on_failure():
            for d in batch:
                db.collection(DELIVERIES).update_one(
                    {"_id": d.id, "attempts": d.attempts}, {"$set": {"wokenFor": d.attempts}}
                )


def redrive(*, dead_letter_queue_url: str, queue_url: str, limit: int = 1000) -> int:
    """Move up to `limit` messages from the dead-letter queue back to the dispatcher's queue;
    returns how many moved. Each is deleted from the dead-letter queue only once sent, so an
    interrupted run sends some again: the dispatcher takes an event or a wake-up twice as once."""
    from botocore.exceptions import BotoCoreError, ClientError

    client = aws.client("sqs")
    moved = 0
    while moved < limit:
        try:
            batch = client.receive_message(
                QueueUrl=dead_letter_queue_url,
                MaxNumberOfMessages=min(10, limit - moved),
                WaitTimeSeconds=0,
                VisibilityTimeout=60,
            ).get("Messages", [])
            if not batch:
                return moved
            sent = client.send_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "MessageBody": m["Body"]} for i, m in enumerate(batch)],
            )
            ok = {int(e["Id"]) for e in sent.get("Successful", [])}
            if ok:
                client.delete_message_batch(
                    QueueUrl=dead_letter_queue_url,
                    Entries=[{"Id": str(i), "ReceiptHandle": batch[i]["ReceiptHandle"]} for i in sorted(ok)],
                )
        except (BotoCoreError, ClientError) as exc:
            raise ServiceUnavailable("The webhook queues are unavailable; retry shortly.") from exc
        if len(ok) < len(batch):
            raise ServiceUnavailable("Some dead-lettered messages could not be sent back; run again.")
        moved += len(ok)
    return moved


def validate_event_types(types: list[str]) -> list[str]:
    """Known event names only, each once."""
    unknown = sorted(set(types) - set(webhooks.EVENT_TYPES))
    if unknown:
        raise ValidationFailed(f"Unknown event type(s): {', '.join(unknown)}.")
    return sorted(set(types))
