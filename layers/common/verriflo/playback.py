"""Playback tokens: short-lived HMAC-signed grants to stream one video, and signed segment URLs.

A token is `<payload>.<signature>`, both base64url: the payload names the org, the video and the
expiry; the signature is HMAC-SHA256 under a key kept in Secrets Manager (never in the
environment, the logs or a response). Browsers only ever see tokens, never an API key.
Segments are served straight from storage through URLs that are signed too: S3 presigned URLs by
default, or CloudFront signed URLs when a distribution is configured (production).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

from verriflo import media, secrets
from verriflo.errors import Forbidden

EXPIRED = "The playback link has expired; ask the API for a new one."
INVALID = "The playback token is not valid."


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _key() -> bytes:
    return secrets.get_secret(media.media_settings().playback_secret_name).encode()


@dataclass(frozen=True)
class Grant:
    """What a valid token allows: streaming `video_id` of `org_id` until `expires_at` (epoch s)."""

    org_id: str
    video_id: str
    expires_at: int


def sign(org_id: str, video_id: str, ttl_s: int, *, now: float | None = None) -> tuple[str, int]:
    """A token for one video, and when it expires (epoch seconds)."""
    expires = int((now or time.time()) + ttl_s)
    payload = _b64(json.dumps({"o": org_id, "v": video_id, "e": expires}, separators=(",", ":")).encode())
    signature = _b64(hmac.new(_key(), payload.encode(), hashlib.sha256).digest())
    return f"{payload}.{signature}", expires


def master_url(video: media.Video, base_url: str) -> str | None:
    """The signed URL of a video's HLS master playlist (through the stream proxy, valid
    `playback_ttl_s`), or None while nothing of it is playable."""
    if not video.playable:
        return None
    token, _ = sign(video.org_id, video.id, media.media_settings().playback_ttl_s)
    return f"{base_url}/v1/cdn/stream/{video.id}/master.m3u8?token={token}"


def base_url(event: Any) -> str:
    """Where the API is reached from outside, for the stream URLs a route hands out (`event`: the
    Powertools event of the request).

    PUBLIC_BASE_URL wins; on LocalStack (STAGE=local) REST APIs answer offline under
    `/_aws/execute-api/<apiId>/<stage>` over plain HTTP; on AWS it is the Host the caller used plus
    whatever prefix the gateway put before our path (the stage, or a custom domain's base path).
    """
    from verriflo.settings import api_settings

    configured = media.media_settings().public_base_url
    if configured:
        return configured.rstrip("/")
    headers = {k.lower(): v for k, v in (event.headers or {}).items()}
    context = event.raw_event.get("requestContext") or {}
    host = headers.get("host", "localhost")
    if api_settings().stage == "local":
        proto = headers.get("x-forwarded-proto", "http")
        return f"{proto}://{host}/_aws/execute-api/{context.get('apiId')}/{context.get('stage')}"
    full = context.get("path") or event.path
    prefix = full[: -len(event.path)] if full.endswith(event.path) else ""
    return f"{headers.get('x-forwarded-proto', 'https')}://{host}{prefix}"


def verify(token: str | None, video_id: str, *, now: float | None = None) -> Grant:
    """The grant of a token for `video_id`; Forbidden (403) if missing, tampered, foreign or expired."""
    # Tokens are base64url: anything else is refused before hmac.compare_digest, which raises
    # TypeError on non-ASCII text.
    if not token or not token.isascii() or token.count(".") != 1 or len(token) > 1024:
        raise Forbidden(INVALID)
    payload, signature = token.split(".")
    expected = _b64(hmac.new(_key(), payload.encode(), hashlib.sha256).digest())
    if not hmac.compare_digest(expected, signature):
        raise Forbidden(INVALID)
    try:
        claims: dict[str, Any] = json.loads(_unb64(payload))
        grant = Grant(org_id=str(claims["o"]), video_id=str(claims["v"]), expires_at=int(claims["e"]))
    except (ValueError, KeyError, TypeError) as exc:
        raise Forbidden(INVALID) from exc
    if grant.video_id != video_id:
        raise Forbidden(INVALID)
    if grant.expires_at <= (now or time.time()):
        raise Forbidden(EXPIRED)
    return grant


@cache
def _cloudfront_signer() -> Any:
    from botocore.signers import CloudFrontSigner
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import padding

    settings = media.media_settings()
    pem = secrets.get_secret(settings.cloudfront_private_key_secret_name or "").encode()
    private_key = serialization.load_pem_private_key(pem, password=None)

    def rsa_sign(message: bytes) -> bytes:
        # CloudFront's canned policies are signed with RSA-SHA1 (its documented scheme).
        return private_key.sign(message, padding.PKCS1v15(), hashes.SHA1())  # noqa: S303

    return CloudFrontSigner(settings.cloudfront_key_pair_id, rsa_sign)


def at_moment(url: str | None, start_s: float) -> str | None:
    """A playback URL that asks the player to start at `start_s` seconds (a `#t=` media fragment,
    W3C Media Fragments; never sent to the server, so the token check is unchanged)."""
    return None if url is None else f"{url}#t={start_s:.2f}"


def segment_url(key: str, ttl_s: int) -> str:
    """A signed, short-lived URL for one object of the media bucket (a segment or a poster)."""
    from verriflo import objects

    settings = media.media_settings()
    if settings.cloudfront_domain and settings.cloudfront_key_pair_id:
        import datetime

        expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=ttl_s)
        return _cloudfront_signer().generate_presigned_url(
            f"https://{settings.cloudfront_domain}/{key}", date_less_than=expires
        )
    return objects.presign_get(settings.media_bucket, key, ttl_s)
