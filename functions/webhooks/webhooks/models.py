"""Request and response models of the webhooks API (camelCase on the wire)."""

# No `from __future__ import annotations`: pydantic would evaluate each string annotation as it
# creates every model class below, a cost every cold start pays.

from datetime import datetime
from typing import Any, Literal

from pydantic import Field
from verriflo.models import ApiModel, StrictApiModel

Url = Field(min_length=8, max_length=2048, description="https URL of the receiver")
EventTypes = Field(max_length=50, description="Event names to receive; empty: every event")


class CreateEndpoint(StrictApiModel):
    url: str = Url
    event_types: list[str] = Field(
        default_factory=list, max_length=50, description="Event names to receive; empty: every event"
    )
    description: str = Field(default="", max_length=500)


class UpdateEndpoint(StrictApiModel):
    url: str | None = Field(default=None, min_length=8, max_length=2048)
    event_types: list[str] | None = Field(default=None, max_length=50)
    description: str | None = Field(default=None, max_length=500)
    enabled: bool | None = None


class EndpointInfo(ApiModel):
    id: str
    url: str
    description: str
    event_types: list[str]
    enabled: bool
    disabled_reason: str | None = None
    previous_secret_valid_until: datetime | None = Field(
        default=None, description="After a rotation, deliveries carry a second signature until then"
    )
    created_at: datetime
    updated_at: datetime


class NewSecret(ApiModel):
    endpoint: EndpointInfo
    secret: str = Field(description="whsec_... signing secret: shown only now, store it")


class EndpointList(ApiModel):
    endpoints: list[EndpointInfo]
    event_types: list[str] = Field(description="Every event name an endpoint can subscribe to")


class Deleted(ApiModel):
    id: str
    deleted: Literal[True] = True


class DeliveryInfo(ApiModel):
    id: str = Field(description="The webhook-id header of every attempt of this delivery")
    event_id: str
    event_type: str
    status: Literal["pending", "succeeded", "failed"]
    attempts: int
    next_attempt_at: datetime | None = None
    last_attempt_at: datetime | None = None
    last_status_code: int | None = None
    last_error: str | None = None
    created_at: datetime
    finished_at: datetime | None = None


class AttemptInfo(ApiModel):
    n: int
    at: datetime
    duration_ms: int
    status_code: int | None = None
    error: str | None = None
    response: str | None = Field(default=None, description="The first bytes of the receiver's answer")


class DeliveryDetail(DeliveryInfo):
    payload: dict[str, Any]
    attempt_log: list[AttemptInfo]


class DeliveryPage(ApiModel):
    items: list[DeliveryInfo]
    next_cursor: str | None


class ReplaySince(StrictApiModel):
    since: datetime = Field(description="Replay every failed delivery created at or after this time")


class Replayed(ApiModel):
    replayed: int
    delivery_ids: list[str] = Field(description="At most the first 100")


class TestSent(ApiModel):
    delivery_id: str
    event_id: str


class EventType(ApiModel):
    type: str
    description: str


class EventTypeList(ApiModel):
    event_types: list[EventType]
