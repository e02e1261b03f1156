"""The classroom page's credential: the participant's LiveKit join token, minted by the rooms join
flow (short-lived, one room, one identity, its role in the metadata), verified here with the LiveKit
secret. The page never holds the org key; a token opens only its own room's tutor routes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from verriflo.auth import OrgContext
from verriflo.errors import ServiceUnavailable, Unauthorized
from verriflo.secrets import get_secret

from ai_tutor.config import tutor_settings

TEACHING = frozenset({"TEACHER", "MODERATOR", "ADMIN"})
_INVALID = "A valid room token is required (Authorization: Bearer <join token>)."


@dataclass(frozen=True, slots=True)
class RoomCredential:
    """Who the page speaks for: one participant of one room of one org."""

    org_id: str
    room_id: str
    uid: str
    role: str

    @property
    def teaching(self) -> bool:
        """Whether the participant teaches (may read every exchange and switch the tutor)."""
        return self.role in TEACHING


def _livekit_keys() -> tuple[str, str]:
    raw = get_secret(tutor_settings().livekit_secret_name)
    try:
        value = json.loads(raw)
        return str(value["apiKey"]), str(value["apiSecret"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ServiceUnavailable("The LiveKit credentials are not configured.") from exc


def _bearer(headers: dict[str, str]) -> str:
    value = headers.get("authorization") or ""
    if value[:7].lower() != "bearer " or len(value) > 8192:
        raise Unauthorized(_INVALID)
    return value[7:].strip()


def verify(headers: dict[str, str]) -> RoomCredential:
    """The credential in `Authorization: Bearer`, or Unauthorized (expired, altered, not a room token)."""
    import jwt

    token = _bearer(headers)
    key, secret = _livekit_keys()
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            issuer=key,
            leeway=5,
            options={"require": ["exp", "sub", "iss"]},
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized(_INVALID) from exc
    video = claims.get("video") or {}
    room = str(video.get("room") or "")
    org_id, _, room_id = room.partition(".")
    if not video.get("roomJoin") or not org_id or not room_id:
        raise Unauthorized(_INVALID)
    try:
        meta = json.loads(claims.get("metadata") or "{}")
    except ValueError:
        meta = {}
    role = str(meta.get("role") or "STUDENT") if isinstance(meta, dict) else "STUDENT"
    return RoomCredential(org_id=org_id, room_id=room_id, uid=str(claims["sub"]), role=role)


def org_context(credential: RoomCredential) -> OrgContext:
    """The org behind a room credential, for rate limits (Unauthorized when the org is gone or suspended)."""
    from verriflo import orgs
    from verriflo.errors import NotFound

    try:
        org = orgs.get_org(credential.org_id)
    except NotFound as exc:
        raise Unauthorized(_INVALID) from exc
    if org.status != "active":
        raise Unauthorized("This organisation is suspended.")
    return OrgContext(
        org_id=org.id,
        org_name=org.name,
        plan=org.plan,
        via="room_token",
        principal=credential.uid,
        role=credential.role,
        rate_limits={g: lim.model_dump() for g, lim in org.rate_limits.items()},
    )
