"""The webhooks management API in-process: endpoints, secrets, URL checks, delivery log, replay, and
org scoping on every route (real MongoDB-wire server, moto for SQS and Secrets Manager)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from support import api_event, call, load_event
from verriflo import db, webhook_store, webhooks
from verriflo.orgs import now
from webhook_support import queued
from webhooks.handler import handler

PUBLIC_URL = "https://93.184.216.34/hooks/verriflo"  # an IP literal: no DNS needed, and public

pytest_plugins = ["webhook_fixtures"]


def _create(org, lambda_context, **body):
    payload = {"url": PUBLIC_URL} | body
    return call(handler, api_event("webhooks/create.json", headers=org.headers, body=payload), lambda_context)


def _ep(name: str, org, endpoint_id: str, **kw):
    """A sample event for a route under /v1/webhooks/{endpoint_id}, with these ids in its path."""
    params = {"endpoint_id": endpoint_id} | kw.pop("extra_params", {})
    path = load_event(f"webhooks/{name}.json")["resource"]
    for key, value in params.items():
        path = path.replace("{" + key + "}", value)
    return api_event(f"webhooks/{name}.json", headers=org.headers, path_params=params, path=path, **kw)


@pytest.fixture
def public_only(webhook_env, monkeypatch):
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_TARGETS", "false")
    webhooks.reset_keys()
    return webhook_env


def test_creating_an_endpoint_shows_its_secret_once_and_stores_it_sealed(org, lambda_context, public_only):
    reply = _create(org, lambda_context, eventTypes=["room.finished", "credits.low"], description="LMS")
    assert reply.status == 201
    data = reply.data
    secret, endpoint = data["secret"], data["endpoint"]
    assert secret.startswith("whsec_") and len(secret) > 40
    assert endpoint["eventTypes"] == ["credits.low", "room.finished"] and endpoint["enabled"] is True
    stored = db.collection(webhook_store.ENDPOINTS).find_one({"_id": endpoint["id"]})
    assert secret not in json.dumps(stored, default=str) and secret[6:] not in json.dumps(stored, default=str)
    listed = call(handler, api_event("webhooks/list.json", headers=org.headers), lambda_context)
    got = call(handler, _ep("get", org, endpoint["id"]), lambda_context)
    for text in (json.dumps(listed.body), json.dumps(got.body)):
        assert secret not in text and 'secret"' not in text.replace("previousSecretValidUntil", "")
    assert listed.data["endpoints"][0]["id"] == endpoint["id"] and "video.ready" in listed.data["eventTypes"]


@pytest.mark.parametrize(
    "url, reason",
    [
        ("http://93.184.216.34/hook", "https"),
        ("https://127.0.0.1/hook", "private"),
        ("https://localhost:8443/hook", "private"),
        ("https://10.1.2.3/hook", "private"),
        ("https://192.168.0.10/hook", "private"),
        ("https://169.254.169.254/latest/meta-data", "private"),
        ("https://[::1]/hook", "private"),
        ("https://[::ffff:127.0.0.1]/hook", "private"),
        ("https://100.64.0.1/hook", "private"),
        ("https://user:pass@93.184.216.34/hook", "credentials"),
        ("https://no-such-host.invalid/hook", "resolved"),
        ("ftp://93.184.216.34/hook", "https"),
        ("https:///nohost", "host"),
    ],
)
def test_a_url_that_is_not_https_or_not_public_is_400_and_nothing_is_stored(
    org, lambda_context, public_only, url, reason
):
    reply = _create(org, lambda_context, url=url)
    assert reply.status == 400 and reply.body["error"] == "VALIDATION_ERROR", reply.body
    assert reason in reply.body["message"]
    assert db.collection(webhook_store.ENDPOINTS).count_documents({"orgId": org.id}) == 0


@pytest.mark.parametrize(
    "body",
    [
        {"eventTypes": ["room.exploded"]},
        {"url": "x"},
        {"surprise": 1},
        {"description": "d" * 501},
    ],
)
def test_bad_endpoint_fields_are_400(org, lambda_context, public_only, body):
    reply = _create(org, lambda_context, **body)
    assert reply.status == 400 and reply.body["error"] == "VALIDATION_ERROR"


def test_an_operator_setting_allows_loopback_http_for_local_testing(org, lambda_context, webhook_env):
    reply = _create(org, lambda_context, url="http://127.0.0.1:9/hook")
    assert reply.status == 201


def test_update_changes_only_the_given_fields_and_checks_the_url(org, lambda_context, public_only):
    endpoint_id = _create(org, lambda_context, description="first").data["endpoint"]["id"]
    updated = call(
        handler, _ep("update", org, endpoint_id, body={"eventTypes": ["video.ready"]}), lambda_context
    )
    assert updated.data["eventTypes"] == ["video.ready"] and updated.data["description"] == "first"
    bad = call(handler, _ep("update", org, endpoint_id, body={"url": "https://10.0.0.1/x"}), lambda_context)
    assert bad.status == 400
    null = call(handler, _ep("update", org, endpoint_id, body={"url": None}), lambda_context)
    assert null.status == 400
    off = call(handler, _ep("update", org, endpoint_id, body={"enabled": False}), lambda_context)
    assert off.data["enabled"] is False
    assert call(handler, _ep("get", org, endpoint_id), lambda_context).data["url"] == PUBLIC_URL


def test_rotating_keeps_the_old_secret_signing_for_the_grace_period(org, lambda_context, public_only):
    created = _create(org, lambda_context).data
    rotated = call(handler, _ep("rotate", org, created["endpoint"]["id"]), lambda_context)
    assert rotated.status == 200
    new_secret = rotated.data["secret"]
    assert new_secret != created["secret"] and rotated.data["endpoint"]["previousSecretValidUntil"]
    endpoint = webhook_store.get_endpoint(org.id, created["endpoint"]["id"])
    assert endpoint.signing_secrets(now()) == [new_secret, created["secret"]]
    assert endpoint.signing_secrets(now() + timedelta(hours=25)) == [new_secret]


def test_a_test_event_is_queued_as_a_delivery(org, lambda_context, public_only):
    endpoint_id = _create(org, lambda_context).data["endpoint"]["id"]
    sent = call(handler, _ep("test", org, endpoint_id), lambda_context)
    assert sent.status == 202
    messages = queued(public_only["queue"])
    assert messages == [{"deliveryId": sent.data["deliveryId"], "forAttempt": 0}]
    log = call(handler, _ep("deliveries", org, endpoint_id), lambda_context).data
    assert [d["eventType"] for d in log["items"]] == ["webhook.test"] and log["items"][0][
        "status"
    ] == "pending"
    detail = call(
        handler,
        _ep("delivery", org, endpoint_id, extra_params={"delivery_id": sent.data["deliveryId"]}),
        lambda_context,
    ).data
    assert detail["payload"]["type"] == "webhook.test" and detail["payload"]["orgId"] == org.id
    call(handler, _ep("update", org, endpoint_id, body={"enabled": False}), lambda_context)
    assert call(handler, _ep("test", org, endpoint_id), lambda_context).status == 409


def _failed_delivery(org_id: str, endpoint_id: str, event_id: str, created_ago: timedelta) -> str:
    endpoint = webhook_store.get_endpoint(org_id, endpoint_id)
    event = {
        "id": event_id,
        "type": "room.finished",
        "orgId": org_id,
        "createdAt": now().isoformat(),
        "data": {},
    }
    delivery, _ = webhook_store.ensure_delivery(endpoint, event)
    db.collection(webhook_store.DELIVERIES).update_one(
        {"_id": delivery.id},
        {
            "$set": {
                "status": "failed",
                "attempts": 10,
                "createdAt": now() - created_ago,
                "finishedAt": now(),
                "lastError": "timeout",
            }
        },
    )
    return delivery.id


def test_replaying_one_delivery_or_every_failure_since_a_time(org, lambda_context, public_only):
    endpoint_id = _create(org, lambda_context).data["endpoint"]["id"]
    old = _failed_delivery(org.id, endpoint_id, "evt_old", timedelta(days=3))
    recent = [_failed_delivery(org.id, endpoint_id, f"evt_{i}", timedelta(hours=i + 1)) for i in range(3)]
    one = call(
        handler, _ep("replay_one", org, endpoint_id, extra_params={"delivery_id": old}), lambda_context
    )
    assert one.status == 202 and one.data == {"replayed": 1, "deliveryIds": [old]}
    assert (
        call(
            handler, _ep("replay_one", org, endpoint_id, extra_params={"delivery_id": old}), lambda_context
        ).status
        == 409
    )  # already on its way again
    since = (now() - timedelta(days=1)).isoformat()
    many = call(handler, _ep("replay_since", org, endpoint_id, body={"since": since}), lambda_context)
    assert many.status == 202 and sorted(many.data["deliveryIds"]) == sorted(recent)
    woken = queued(public_only["queue"])
    assert sorted(m["deliveryId"] for m in woken) == sorted([old, *recent])
    assert {m["forAttempt"] for m in woken} == {10}  # the same delivery id, its schedule reopened


@pytest.mark.parametrize(
    "body", [{"since": "2099-01-01T00:00:00Z"}, {"since": "2020-01-01T00:00:00Z"}, {"since": "last week"}, {}]
)
def test_a_bad_replay_time_is_400(org, lambda_context, public_only, body):
    endpoint_id = _create(org, lambda_context).data["endpoint"]["id"]
    reply = call(handler, _ep("replay_since", org, endpoint_id, body=body), lambda_context)
    assert reply.status == 400 and reply.body["error"] == "VALIDATION_ERROR"


def test_the_delivery_log_pages_and_rejects_a_bad_cursor(org, lambda_context, public_only):
    endpoint_id = _create(org, lambda_context).data["endpoint"]["id"]
    ids = [_failed_delivery(org.id, endpoint_id, f"evt_{i}", timedelta(minutes=10 - i)) for i in range(5)]
    first = call(handler, _ep("deliveries", org, endpoint_id, query={"limit": "3"}), lambda_context).data
    assert [d["id"] for d in first["items"]] == ids[::-1][:3]
    rest = call(
        handler,
        _ep("deliveries", org, endpoint_id, query={"limit": "3", "cursor": first["nextCursor"]}),
        lambda_context,
    ).data
    assert [d["id"] for d in rest["items"]] == ids[::-1][3:] and rest["nextCursor"] is None
    bad = call(handler, _ep("deliveries", org, endpoint_id, query={"cursor": "yesterday"}), lambda_context)
    assert bad.status == 400


ROUTES = [
    ("get", {}),
    ("update", {"body": {"description": "mine now"}}),
    ("delete", {}),
    ("rotate", {}),
    ("test", {}),
    ("deliveries", {}),
    ("replay_since", {"body": {"since": "NOW"}}),  # the time the test runs, not when it was collected
]


@pytest.mark.parametrize("name, kw", ROUTES)
def test_another_orgs_endpoint_is_404_on_every_route_and_stays_untouched(
    org, other_org, lambda_context, public_only, name, kw
):
    theirs = _create(other_org, lambda_context, description="theirs").data["endpoint"]["id"]
    if kw.get("body", {}).get("since") == "NOW":
        kw = {"body": {"since": now().isoformat()}}
    reply = call(handler, _ep(name, org, theirs, **kw), lambda_context)
    assert reply.status == 404 and reply.body["error"] == "NOT_FOUND"
    assert "theirs" not in json.dumps(reply.body)
    still = webhook_store.get_endpoint(other_org.id, theirs)
    assert still.description == "theirs" and still.previous_sealed is None


def test_another_orgs_delivery_is_404_even_through_ones_own_endpoint(
    org, other_org, lambda_context, public_only
):
    mine = _create(org, lambda_context).data["endpoint"]["id"]
    theirs = _create(other_org, lambda_context).data["endpoint"]["id"]
    delivery = _failed_delivery(other_org.id, theirs, "evt_secret", timedelta(hours=1))
    for name in ("delivery", "replay_one"):
        for endpoint in (mine, theirs):
            reply = call(
                handler, _ep(name, org, endpoint, extra_params={"delivery_id": delivery}), lambda_context
            )
            assert reply.status == 404
    assert (
        call(handler, api_event("webhooks/list.json", headers=org.headers), lambda_context).data["endpoints"][
            0
        ]["id"]
        == mine
    )


def _log_of(endpoint_id: str) -> tuple[int, int]:
    query = {"endpointId": endpoint_id}
    return (
        db.collection(webhook_store.DELIVERIES).count_documents(query),
        db.collection(webhook_store.ATTEMPTS).count_documents(query),
    )


def _attempted(org_id: str, endpoint_id: str, event_id: str) -> str:
    delivery_id = _failed_delivery(org_id, endpoint_id, event_id, timedelta(hours=1))
    delivery = webhook_store.find_delivery(delivery_id)
    attempt = webhook_store.Attempt(deliveryId=delivery_id, n=1, at=now(), durationMs=12, statusCode=500)
    webhook_store.record_attempt(delivery, attempt, status="failed", next_at=None)
    return delivery_id


def test_deleting_an_endpoint_removes_its_log_and_leaves_other_endpoints_alone(
    org, lambda_context, public_only
):
    # Decision (as GitHub and Stripe do): the delivery log belongs to the endpoint and goes with it;
    # an integrator who wants to stop deliveries but keep the log disables the endpoint instead.
    endpoint_id = _create(org, lambda_context).data["endpoint"]["id"]
    kept_id = _create(org, lambda_context, description="kept").data["endpoint"]["id"]
    delivery_id = _attempted(org.id, endpoint_id, "evt_1")
    _attempted(org.id, kept_id, "evt_1")
    assert _log_of(endpoint_id) == (1, 1)
    assert call(handler, _ep("delete", org, endpoint_id), lambda_context).data == {
        "id": endpoint_id,
        "deleted": True,
    }
    assert call(handler, _ep("get", org, endpoint_id), lambda_context).status == 404
    assert call(handler, _ep("deliveries", org, endpoint_id), lambda_context).status == 404
    replay = _ep("replay_one", org, endpoint_id, extra_params={"delivery_id": delivery_id})
    assert call(handler, replay, lambda_context).status == 404
    assert _log_of(endpoint_id) == (0, 0)
    assert _log_of(kept_id) == (1, 1)
    kept_log = call(handler, _ep("deliveries", org, kept_id), lambda_context).data
    assert [d["status"] for d in kept_log["items"]] == ["failed"]


def test_disabling_an_endpoint_stops_deliveries_and_keeps_its_log(org, lambda_context, public_only):
    endpoint_id = _create(org, lambda_context).data["endpoint"]["id"]
    _attempted(org.id, endpoint_id, "evt_1")
    off = call(handler, _ep("update", org, endpoint_id, body={"enabled": False}), lambda_context)
    assert off.data["enabled"] is False
    assert _log_of(endpoint_id) == (1, 1)
    assert len(call(handler, _ep("deliveries", org, endpoint_id), lambda_context).data["items"]) == 1


def test_no_key_is_401(lambda_context, public_only):
    assert call(handler, api_event("webhooks/list.json", headers={}), lambda_context).status == 401
