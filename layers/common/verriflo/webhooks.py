"""Outbound webhooks, shared by the management API and the dispatcher: settings, the event catalogue,
endpoint secrets (Standard Webhooks `whsec_...`) and how they are kept, signing, the retry schedule.

Secrets: HMAC signing needs the secret itself, so it cannot be stored as a hash (as API keys are).
Each is stored encrypted with AES-256-GCM under a key held in AWS Secrets Manager (never in the
database or the environment), with the endpoint id as associated data, so a database dump alone
reveals no secret and a ciphertext cannot be moved to another endpoint. A secret is shown once, on
create and on rotate. After a rotation the previous secret keeps signing too (a second `v1,`
signature) for a grace period, so receivers can switch without dropping deliveries.
"""

# No `from __future__ import annotations`: pydantic would evaluate each string annotation as it
# creates every model class below, a cost every cold start pays.

import base64
import hashlib
import json
import os
import secrets
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, NamedTuple

from pydantic import Field

from verriflo.secrets import get_secret
from verriflo.settings import EnvSettings, SettingsConfigDict

SECRET_PREFIX = "whsec_"  # noqa: S105 - the scheme prefix, not a secret


class EventType(NamedTuple):
    """One entry of the event catalogue: one fact, one type, one payload (`data`)."""

    name: str
    when: str
    fields: tuple[str, ...]
    emitted_by: str


# The event catalogue: every event type, when it is published (once per fact: each has a fixed event
# id, so a retry publishes the same event and endpoints get one delivery) and the fields of its `data`.
# README ("Credits, usage and webhooks") shows the same table; a unit test keeps them alike.
CATALOGUE = (
    EventType(
        "room.started", "LiveKit reports the class's room started", ("roomId", "sid", "startedAt"), "rooms"
    ),
    EventType(
        "room.finished",
        "the class ended (`DELETE /v1/room/{roomId}` or LiveKit closed the room)",
        ("roomId", "sid", "endedAt", "reason"),
        "rooms",
    ),
    EventType(
        "participant.joined",
        "a participant connected to a room (one removed from it is disconnected at once, announced "
        "neither joined nor left)",
        ("roomId", "uid", "name", "role", "joinedAt"),
        "rooms",
    ),
    EventType(
        "participant.left",
        "a participant left (their minutes are charged)",
        ("roomId", "uid", "seconds"),
        "rooms",
    ),
    EventType("recording.started", "LiveKit Egress started a recording", ("roomId", "egressId"), "rooms"),
    EventType(
        "recording.ready",
        "a recording's MP4 file is stored and downloadable (`.../recording/{egressId}/download`); once "
        "per recording. Its HLS follows as `video.ready` with `kind: recording` and the same `videoId`",
        ("roomId", "egressId", "videoId", "size", "duration"),
        "rooms",
    ),
    EventType(
        "video.ready",
        "a video's whole HLS ladder is transcoded and playable (`GET /v1/cdn/videos/{videoId}/url`): an "
        "upload (`kind: upload`) or a class recording (`kind: recording`, with `roomId` and `egressId`)",
        ("videoId", "kind", "title", "status", "durationS", "renditions", "roomId", "egressId"),
        "transcode",
    ),
    EventType(
        "video.failed",
        "a video (upload or recording) could not be transcoded, or its upload never came",
        ("videoId", "kind", "title", "status", "message", "roomId", "egressId"),
        "transcode",
    ),
    EventType(
        "video.deleted",
        "a video (upload or recording) was deleted (`DELETE /v1/cdn/videos/{videoId}`): its media, "
        "captions and transcript are gone, and it leaves the search index and knowledge bases",
        ("videoId", "kind", "roomId", "title"),
        "cdn",
    ),
    EventType(
        "video.captions_ready",
        "a video's captions are ready (made automatically beside the transcode, or replaced by an owner's "
        "`.vtt`): in the HLS master as a subtitles track and at `GET /v1/cdn/videos/{videoId}/captions`",
        ("videoId", "kind", "roomId", "title", "captions", "language", "source", "durationS"),
        "captions",
    ),
    EventType(
        "summary.ready",
        "the AI tutor's summary of a finished class is written",
        ("roomId", "interactions", "topQueries", "method"),
        "ai_tutor",
    ),
    EventType(
        "credits.low",
        "the balance fell below the org's mark (once per crossing)",
        ("remainingCredits", "threshold"),
        "ledger",
    ),
    EventType(
        "credits.exhausted",
        "the balance reached zero or less (once per crossing)",
        ("remainingCredits", "threshold"),
        "ledger",
    ),
    EventType("webhook.test", "`POST /v1/webhooks/{id}/test`", ("endpointId", "message"), "webhooks"),
)

# The events an endpoint can subscribe to (API.md's dotted names, plus ours).
EVENT_TYPES = tuple(e.name for e in CATALOGUE)
# What each event means, as `GET /v1/webhooks/event-types` lists it.
EVENT_DESCRIPTIONS = {e.name: e.when[0].upper() + e.when[1:] + "." for e in CATALOGUE}


def subscribed_as(event_type: str, data: dict[str, Any] | None = None) -> tuple[str, ...]:
    """The subscriptions an event is delivered under: its own type, and for a recording's
    `video.ready` also `recording.ready`. Until `recording.ready` had one meaning (its MP4), the
    transcoder also published a `recording.ready` when a recording's HLS was ready: an endpoint
    subscribed to `recording.ready` without `video.ready` still gets that fact, now as the
    recording's `video.ready` (`kind: recording`), never an upload's."""
    if event_type == "video.ready" and (data or {}).get("kind") == "recording":
        return (event_type, "recording.ready")
    return (event_type,)


# Seconds to wait before attempt n+1 after attempt n failed: at once, then growing to a day; the ten
# attempts span about 3.1 days.
RETRY_SCHEDULE_S = (0, 5, 300, 1800, 7200, 18_000, 36_000, 50_400, 72_000, 86_400)


class WebhookSettings(EnvSettings):
    """Webhook delivery settings."""

    model_config = SettingsConfigDict(env_prefix="WEBHOOK_", extra="ignore")

    allow_private_targets: bool = Field(
        default=False, description="allow http and loopback/private addresses (local testing only)"
    )
    key_secret_name: str = Field(
        default="verriflo/webhook-key",
        description="Secrets Manager secret whose value encrypts endpoint secrets",
    )
    queue_url: str | None = Field(default=None, description="the dispatcher's SQS queue")
    dead_letter_queue_url: str | None = Field(
        default=None,
        description="where the queue puts messages after 5 failed receives (redriven by operators)",
    )
    connect_timeout_s: float = Field(default=3.0, gt=0, le=30)
    timeout_s: float = Field(default=10.0, gt=0, le=60, description="per delivery, whole request")
    max_response_bytes: int = Field(default=2048, ge=0, le=65_536, description="kept per attempt")
    rotation_grace_h: float = Field(default=24, ge=0, le=168)
    max_endpoints: int = Field(default=20, ge=1, le=1000, description="per organisation")
    concurrency: int = Field(default=16, ge=1, le=128, description="deliveries in flight per invocation")


@cache
def webhook_settings() -> WebhookSettings:
    """The webhook settings, read once per process."""
    return WebhookSettings()


def new_secret() -> str:
    """A fresh signing secret: `whsec_` + base64 of 32 random bytes (Standard Webhooks)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


@cache
def _aead() -> Any:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    material = get_secret(webhook_settings().key_secret_name)
    return AESGCM(hashlib.sha256(material.encode()).digest())


def seal(secret: str, endpoint_id: str) -> str:
    """Encrypt an endpoint secret for storage (bound to the endpoint id)."""
    nonce = os.urandom(12)
    sealed = _aead().encrypt(nonce, secret.encode(), endpoint_id.encode())
    return base64.b64encode(nonce + sealed).decode()


def unseal(stored: str, endpoint_id: str) -> str:
    """Decrypt a stored endpoint secret."""
    raw = base64.b64decode(stored)
    return _aead().decrypt(raw[:12], raw[12:], endpoint_id.encode()).decode()


def reset_keys() -> None:
    """Forget the cached encryption key and settings (tests rotate them)."""
    _aead.cache_clear()
    webhook_settings.cache_clear()


def sign(secrets_: list[str], msg_id: str, at: datetime, body: str) -> dict[str, str]:
    """The Standard Webhooks headers for one delivery, one `v1,` signature per live secret."""
    from standardwebhooks.webhooks import Webhook

    stamp = at.astimezone(UTC).replace(tzinfo=None)
    signatures = " ".join(Webhook(s).sign(msg_id, stamp, body) for s in secrets_)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signatures,
    }


def body_of(event: dict[str, Any]) -> str:
    """The exact bytes delivered for an event (fixed once, so every retry sends and signs the same)."""
    return json.dumps(event, separators=(",", ":"), sort_keys=True, default=str)


def delivery_id(endpoint_id: str, event_id: str) -> str:
    """The delivery id (`webhook-id`) of an event at an endpoint: the same event twice, one id."""
    return "msg_" + hashlib.sha256(f"{endpoint_id}\x00{event_id}".encode()).hexdigest()[:26]


def next_delay(attempts_made: int) -> timedelta | None:
    """How long to wait before the next attempt, or None when the schedule is used up."""
    if attempts_made >= len(RETRY_SCHEDULE_S):
        return None
    return timedelta(seconds=RETRY_SCHEDULE_S[attempts_made])
