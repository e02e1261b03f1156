"""Webhook endpoint routes (rate-limit group "webhooks")."""

# No `from __future__ import annotations` here: Powertools resolves each route's dependencies with
# typing.get_type_hints on every request, and string annotations are re-compiled each time.
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Query
from verriflo.api import Envelope, Org, create_app, lambda_handler, ok, protected, responses

from webhooks import logic, models

app = create_app()
api = protected(app, "webhooks")
TAGS = ["webhooks"]
EP = "/v1/webhooks/<endpoint_id>"


@api.post(
    "/v1/webhooks",
    summary="Create a webhook endpoint",
    tags=TAGS,
    responses=responses(models.NewSecret, 400, 401, 403, 409, 429, 503, status=201),
)
def create(body: models.CreateEndpoint, org: Org) -> Envelope[models.NewSecret]:
    """The URL must be https and public; the `whsec_` secret is in this response only."""
    return ok(logic.create(org, body), status=201)


@api.get(
    "/v1/webhooks",
    summary="List webhook endpoints",
    tags=TAGS,
    responses=responses(models.EndpointList, 401, 429, 503),
)
def list_endpoints(org: Org) -> Envelope[models.EndpointList]:
    """Endpoints (never their secrets) and the event names they can subscribe to."""
    return ok(logic.list_all(org))


@api.get(
    "/v1/webhooks/event-types",
    summary="The events an endpoint can subscribe to",
    tags=TAGS,
    responses=responses(models.EventTypeList, 401, 429, 503),
)
def event_types(org: Org) -> Envelope[models.EventTypeList]:
    """Each event's `type` (the name to subscribe with) and what it means."""
    return ok(logic.event_types())


@api.get(
    EP, summary="A webhook endpoint", tags=TAGS, responses=responses(models.EndpointInfo, 401, 404, 429, 503)
)
def get_endpoint(endpoint_id: str, org: Org) -> Envelope[models.EndpointInfo]:
    """One endpoint; another org's id is 404."""
    return ok(logic.get(org, endpoint_id))


@api.patch(
    EP,
    summary="Update a webhook endpoint",
    tags=TAGS,
    responses=responses(models.EndpointInfo, 400, 401, 403, 404, 429, 503),
)
def update_endpoint(endpoint_id: str, body: models.UpdateEndpoint, org: Org) -> Envelope[models.EndpointInfo]:
    """URL, event filter, description, or `enabled` (re-enabling clears a 410 disable)."""
    return ok(logic.update(org, endpoint_id, body))


@api.delete(
    EP,
    summary="Delete a webhook endpoint",
    tags=TAGS,
    responses=responses(models.Deleted, 401, 403, 404, 429, 503),
)
def delete_endpoint(endpoint_id: str, org: Org) -> Envelope[models.Deleted]:
    """The endpoint and its delivery log."""
    return ok(logic.delete(org, endpoint_id))


@api.post(
    f"{EP}/rotate-secret",
    summary="Rotate an endpoint's signing secret",
    tags=TAGS,
    responses=responses(models.NewSecret, 401, 403, 404, 409, 429, 503),
)
def rotate_secret(endpoint_id: str, org: Org) -> Envelope[models.NewSecret]:
    """The new secret (shown once); the old one also signs for 24 hours."""
    return ok(logic.rotate(org, endpoint_id))


@api.post(
    f"{EP}/test",
    summary="Send a test event to an endpoint",
    tags=TAGS,
    responses=responses(models.TestSent, 401, 403, 404, 409, 429, 503, status=202),
)
def send_test(endpoint_id: str, org: Org) -> Envelope[models.TestSent]:
    """A `webhook.test` event, delivered (and logged) like any other."""
    return ok(logic.send_test(org, endpoint_id), status=202)


@api.get(
    f"{EP}/deliveries",
    summary="An endpoint's delivery log",
    tags=TAGS,
    responses=responses(models.DeliveryPage, 400, 401, 404, 429, 503),
)
def deliveries(
    endpoint_id: str,
    org: Org,
    status: Annotated[Literal["pending", "succeeded", "failed"] | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> Envelope[models.DeliveryPage]:
    """Newest first; `failed` ones can be replayed."""
    return ok(logic.deliveries(org, endpoint_id, status=status, limit=limit, cursor=cursor))


@api.get(
    f"{EP}/deliveries/<delivery_id>",
    summary="One delivery with every attempt",
    tags=TAGS,
    responses=responses(models.DeliveryDetail, 401, 404, 429, 503),
)
def delivery(endpoint_id: str, delivery_id: str, org: Org) -> Envelope[models.DeliveryDetail]:
    """The payload as sent, and each attempt's status code, error and time."""
    return ok(logic.delivery(org, endpoint_id, delivery_id))


@api.post(
    f"{EP}/deliveries/<delivery_id>/replay",
    summary="Send one delivery again",
    tags=TAGS,
    responses=responses(models.Replayed, 401, 403, 404, 409, 429, 503, status=202),
)
def replay_one(endpoint_id: str, delivery_id: str, org: Org) -> Envelope[models.Replayed]:
    """With the same webhook-id, so receivers can tell it is the same event."""
    return ok(logic.replay_one(org, endpoint_id, delivery_id), status=202)


@api.post(
    f"{EP}/replay",
    summary="Send again every failed delivery since a time",
    tags=TAGS,
    responses=responses(models.Replayed, 400, 401, 403, 404, 409, 429, 503, status=202),
)
def replay_since(endpoint_id: str, body: models.ReplaySince, org: Org) -> Envelope[models.Replayed]:
    """Failed (including dead-lettered) deliveries created at or after `since` (at most 30 days)."""
    return ok(logic.replay_since(org, endpoint_id, body), status=202)


handler = lambda_handler(app)
