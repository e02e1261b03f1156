"""Keys, passwords, tokens and the authorizer context, with moto for Secrets Manager and no database."""

from __future__ import annotations

import time

import jwt
import pytest
from verriflo import auth, orgs
from verriflo.auth import OrgContext
from verriflo.errors import Unauthorized


def test_keys_are_hashed_with_sha256_and_never_equal_their_hash():
    secret = "vfk_0123abcd_" + "x" * 43
    assert orgs.hash_key(secret) != secret
    assert len(orgs.hash_key(secret)) == 64
    assert orgs.hash_key(secret) == orgs.hash_key(secret)


def test_passwords_are_argon2id_and_verify_only_the_right_password():
    stored = auth.hash_password("correct horse battery staple")
    assert stored.startswith("$argon2id$")
    assert auth.verify_password(stored, "correct horse battery staple")
    assert not auth.verify_password(stored, "wrong")
    assert not auth.verify_password("not-a-hash", "anything")


def test_authorizer_context_round_trips_with_flat_string_values():
    ctx = OrgContext(
        "org_1", "Acme", "prepaid", "api_key", "key_1", "api", {"rooms": {"limit": 5, "window": 60}}
    )
    flat = ctx.to_authorizer_context()
    assert all(isinstance(v, str) for v in flat.values())
    assert OrgContext.from_authorizer_context(flat) == ctx


def test_missing_credentials_are_rejected_before_any_lookup():
    with pytest.raises(Unauthorized):
        auth.authenticate({})
    with pytest.raises(Unauthorized):
        auth.authenticate({"Authorization": "Basic abc"})


def test_a_key_without_our_scheme_is_rejected_without_a_database_call(monkeypatch):
    monkeypatch.setattr(orgs, "find_active_key", lambda _s: pytest.fail("must not query"))
    with pytest.raises(Unauthorized):
        auth.authenticate({"vf-org-id": "not-a-verriflo-key"})


@pytest.mark.parametrize("mutate", ["expired", "tampered", "foreign_secret", "wrong_audience", "none_alg"])
def test_bad_tokens_are_rejected(aws_env, mutate):
    from verriflo.secrets import get_secret

    secret = get_secret("verriflo/jwt-secret")
    now = int(time.time())
    claims = {
        "iss": "verriflo",
        "aud": "verriflo-dashboard",
        "sub": "usr_1",
        "org": "org_1",
        "role": "owner",
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    key, alg = secret, "HS256"
    if mutate == "expired":
        claims |= {"iat": now - 7200, "nbf": now - 7200, "exp": now - 3600}
    elif mutate == "foreign_secret":
        key = "some-other-secret-some-other-secret"
    elif mutate == "wrong_audience":
        claims["aud"] = "someone-else"
    token = (
        jwt.encode(claims, key, algorithm=alg)
        if mutate != "none_alg"
        else jwt.encode(claims, None, algorithm="none")
    )
    if mutate == "tampered":
        head, body, sig = token.split(".")
        token = ".".join([head, body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1], sig])
    with pytest.raises(Unauthorized):
        auth.authenticate({"Authorization": f"Bearer {token}"})


def test_ipv6_sources_are_throttled_per_64_block():
    from identity.throttle import source_of

    assert source_of("2001:db8:1:2:aaaa::1") == source_of("2001:db8:1:2:ffff::9") == "2001:db8:1:2::/64"
    assert source_of("2001:db8:1:3::1") != source_of("2001:db8:1:2::1")
    assert source_of("::ffff:203.0.113.10") == "203.0.113.10"
    assert source_of("not an address") == "unknown"
