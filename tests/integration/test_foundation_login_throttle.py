"""Dashboard sign-in throttling: guessing is locked per (account, source), and strangers hammering an
account never lock its owner out from the owner's own address."""

from __future__ import annotations

import dataclasses

import pytest
from support import api_event, call

OWNER_IP = "203.0.113.10"
STRANGER_IP = "198.51.100.7"


@pytest.fixture
def identity():
    from identity.handler import handler

    return handler


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch):
    """The throttle's clock, moved by the test instead of sleeping."""
    from identity import throttle

    class Clock:
        t = 1_000_000_000.0

        def advance(self, seconds: float) -> None:
            self.t += seconds

    c = Clock()
    monkeypatch.setattr(throttle, "now", lambda: c.t)
    return c


def _login(identity, org, ctx, source: str, password: str | None = None, email: str | None = None):
    event = api_event(
        "identity/login.json",
        body={"email": email or org.owner_email, "password": password or org.owner_password},
    )
    event["requestContext"]["identity"]["sourceIp"] = source
    return call(identity, event, ctx)


def _assert_throttled(reply) -> int:
    assert reply.status == 429, reply.body
    assert reply.body == {
        "success": False,
        "message": "Too many sign-in attempts from this address; retry later.",
        "error": "RATE_LIMITED",
    }
    return int(reply.headers["Retry-After"])


def test_a_strangers_wrong_passwords_do_not_lock_the_owner_out(identity, org, lambda_context, clock):
    stranger = [_login(identity, org, lambda_context, STRANGER_IP, "guess").status for _ in range(12)]
    assert stranger == [401] * 10 + [429] * 2

    owner = _login(identity, org, lambda_context, OWNER_IP)
    assert owner.status == 200 and owner.data["user"]["email"] == org.owner_email
    # The stranger stays locked out: the owner's success cleared only the owner's own address.
    _assert_throttled(_login(identity, org, lambda_context, STRANGER_IP, "guess"))


def test_wrong_passwords_from_one_source_get_429_with_a_growing_retry_after(
    identity, org, lambda_context, clock
):
    for _ in range(10):
        assert _login(identity, org, lambda_context, STRANGER_IP, "guess").status == 401
    first_wait = _assert_throttled(_login(identity, org, lambda_context, STRANGER_IP, "guess"))
    assert first_wait == 60
    # Locked means locked: not even the right password is checked from that address.
    _assert_throttled(_login(identity, org, lambda_context, STRANGER_IP))

    clock.advance(first_wait - 1)
    assert _assert_throttled(_login(identity, org, lambda_context, STRANGER_IP, "guess")) == 1
    clock.advance(1)
    assert _login(identity, org, lambda_context, STRANGER_IP, "guess").status == 401
    # Each further wrong password doubles the lock.
    assert _assert_throttled(_login(identity, org, lambda_context, STRANGER_IP, "guess")) == 120


def test_a_correct_password_clears_its_own_sources_count(identity, org, lambda_context, clock):
    for _ in range(9):
        assert _login(identity, org, lambda_context, OWNER_IP, "typo").status == 401
    assert _login(identity, org, lambda_context, OWNER_IP).status == 200
    for _ in range(9):
        assert _login(identity, org, lambda_context, OWNER_IP, "typo").status == 401
    assert _login(identity, org, lambda_context, OWNER_IP).status == 200


def test_an_account_under_attack_slows_every_source_but_still_admits_its_owner(
    identity, org, lambda_context, clock, monkeypatch
):
    from identity import throttle

    # A small ceiling keeps the test short (each wrong password costs an argon2 verification).
    monkeypatch.setattr(throttle, "POLICY", dataclasses.replace(throttle.POLICY, account_ceiling=6))
    for n in range(3):
        source = f"198.51.100.{20 + n}"
        assert [_login(identity, org, lambda_context, source, "guess").status for _ in range(2)] == [401] * 2
    # Past the ceiling, a new source gets three tries instead of ten before its lock.
    late = [_login(identity, org, lambda_context, "198.51.100.99", "guess").status for _ in range(4)]
    assert late == [401, 401, 401, 429]
    assert _login(identity, org, lambda_context, OWNER_IP).status == 200


def test_one_source_spraying_many_accounts_is_locked_only_there(
    identity, org, other_org, lambda_context, clock, monkeypatch
):
    from identity import throttle

    monkeypatch.setattr(throttle, "POLICY", dataclasses.replace(throttle.POLICY, source_ceiling=4))
    emails = [f"user{n}@example.com" for n in range(4)]
    sprayed = [_login(identity, org, lambda_context, STRANGER_IP, "guess", email=e).status for e in emails]
    assert sprayed == [401] * 4
    wait = _assert_throttled(_login(identity, other_org, lambda_context, STRANGER_IP, "x"))
    assert 0 < wait <= throttle.POLICY.source_window_s
    assert _login(identity, other_org, lambda_context, OWNER_IP).status == 200
