"""Webhook signing, ids, sealed secrets and the address guard, without servers (moto for the key)."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from verriflo import netguard, webhooks


def test_signatures_follow_standard_webhooks_and_verify_with_the_reference_library():
    secret = webhooks.new_secret()
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    at = datetime.now(UTC)
    body = webhooks.body_of({"id": "evt_1", "type": "room.started", "data": {"roomId": "r"}})
    headers = webhooks.sign([secret], "msg_1", at, body)
    assert headers["webhook-id"] == "msg_1" and headers["webhook-timestamp"] == str(int(at.timestamp()))
    assert Webhook(secret).verify(body, headers)["id"] == "evt_1"
    with pytest.raises(WebhookVerificationError):
        Webhook(webhooks.new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace("room.started", "room.finished"), headers)


def test_two_live_secrets_give_two_signatures_each_verifiable():
    old, new = webhooks.new_secret(), webhooks.new_secret()
    body = "{}"
    headers = webhooks.sign([new, old], "msg_2", datetime.now(UTC), body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify(body, headers) == {} and Webhook(new).verify(body, headers) == {}


def test_delivery_ids_are_stable_per_endpoint_and_event():
    assert webhooks.delivery_id("we_1", "evt_1") == webhooks.delivery_id("we_1", "evt_1")
    assert webhooks.delivery_id("we_1", "evt_1") != webhooks.delivery_id("we_2", "evt_1")
    assert webhooks.delivery_id("we_1", "evt_1").startswith("msg_")


def test_the_retry_schedule_grows_to_about_three_days_then_stops():
    delays = [webhooks.next_delay(n) for n in range(1, 11)]
    assert delays[0] == timedelta(seconds=5) and delays[-1] is None
    assert all(a < b for a, b in zip(delays[:-2], delays[1:-1], strict=True))
    assert timedelta(days=3) < sum(delays[:-1], timedelta()) < timedelta(days=3.5)


def test_a_sealed_secret_opens_only_for_its_own_endpoint(aws_env):
    boto3.client("secretsmanager").create_secret(Name="verriflo/webhook-key", SecretString=uuid.uuid4().hex)
    webhooks.reset_keys()
    secret = webhooks.new_secret()
    sealed = webhooks.seal(secret, "we_a")
    assert secret not in sealed and webhooks.unseal(sealed, "we_a") == secret
    from cryptography.exceptions import InvalidTag

    with pytest.raises(InvalidTag):
        webhooks.unseal(sealed, "we_b")
    webhooks.reset_keys()


@pytest.mark.parametrize(
    "address, public",
    [
        ("93.184.216.34", True),
        ("2606:2800:220:1:248:1893:25c8:1946", True),
        ("127.0.0.1", False),
        ("10.0.0.8", False),
        ("172.16.3.4", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),
        ("100.64.1.1", False),
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1", False),
        ("fc00::1", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:8.8.8.8", True),
    ],
)
def test_only_public_addresses_pass_the_guard(address, public):
    assert netguard.is_public(address) is public


def test_a_checked_target_connects_to_the_checked_address_with_the_original_host():
    target = netguard.resolve("https://93.184.216.34:8443/a/b?x=1", allow_private=False)
    assert target.url_for("93.184.216.34") == "https://93.184.216.34:8443/a/b?x=1"
    assert target.host_header == "93.184.216.34:8443"
    loop = netguard.resolve("http://[::1]:8080/hook", allow_private=True)
    assert loop.url_for("::1") == "http://[::1]:8080/hook"
