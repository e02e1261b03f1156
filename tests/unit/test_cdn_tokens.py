"""Playback tokens: signed with the key from Secrets Manager, bound to one video, expiring; any
change to the token, a foreign video or an old token is 403. The key never appears in a token."""

from __future__ import annotations

import base64
import json
import time

import boto3
import pytest
from verriflo import media, playback, secrets
from verriflo.errors import Forbidden

VIDEO = "vid_0123456789abcdef01234567"
KEY = "unit-test-playback-key-" + "q" * 30


@pytest.fixture(autouse=True)
def signing_key(aws_env, monkeypatch):
    boto3.client("secretsmanager").create_secret(Name="verriflo/playback-signing-key", SecretString=KEY)
    media.media_settings.cache_clear()
    yield
    media.media_settings.cache_clear()


def test_token_round_trip_names_org_video_and_expiry():
    token, expires = playback.sign("org_a", VIDEO, 3600, now=1_000_000)

    grant = playback.verify(token, VIDEO, now=1_000_000 + 3599)

    assert (grant.org_id, grant.video_id, grant.expires_at) == (
        "org_a",
        VIDEO,
        expires,
    ) and expires == 1_003_600
    assert KEY not in token and KEY not in base64.urlsafe_b64decode(token.split(".")[0] + "==").decode()


def test_expired_token_is_403_with_a_message_saying_so():
    token, _ = playback.sign("org_a", VIDEO, 60, now=1_000_000)
    with pytest.raises(Forbidden, match="expired"):
        playback.verify(token, VIDEO, now=1_000_060)


@pytest.mark.parametrize(
    "tamper",
    ["payload", "signature", "video", "missing", "garbage", "dots", "non-ascii", "non-ascii-signature"],
)
def test_tampered_or_foreign_tokens_are_403(tamper):
    token, _ = playback.sign("org_a", VIDEO, 3600)
    payload, signature = token.split(".")
    if tamper == "payload":
        claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
        claims["o"] = "org_b"
        token = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode() + "." + signature
    elif tamper == "signature":
        token = payload + "." + signature[::-1]
    elif tamper == "missing":
        token = ""
    elif tamper == "garbage":
        token = "not-a-token"
    elif tamper == "dots":
        token = token + ".x"
    elif tamper == "non-ascii":
        token = "a.\u00e9"  # `?token=a.%C3%A9`: hmac.compare_digest raised TypeError on it
    elif tamper == "non-ascii-signature":
        token = payload + "." + signature[:-1] + "\u00e9"
    video = "vid_ffffffffffffffffffffffff" if tamper == "video" else VIDEO
    with pytest.raises(Forbidden):
        playback.verify(token, video)


def test_a_rotated_key_invalidates_old_tokens():
    token, _ = playback.sign("org_a", VIDEO, 3600)
    boto3.client("secretsmanager").put_secret_value(
        SecretId="verriflo/playback-signing-key", SecretString="new-key"
    )
    secrets.reset_secrets()
    with pytest.raises(Forbidden):
        playback.verify(token, VIDEO, now=time.time())
