"""API key management through the dashboard: owners manage their own org's keys, nobody else's;
a revoked key is refused on its very next request, by every function and by the authorizer."""

from __future__ import annotations

import pytest
from support import api_event, call, load_event
from verriflo import auth, cache, orgs, settings
from verriflo.errors import ServiceUnavailable


@pytest.fixture
def identity():
    from identity.handler import handler

    return handler


@pytest.fixture
def billing():
    from billing.handler import handler

    return handler


def _bearer(identity, org, ctx) -> dict[str, str]:
    reply = call(
        identity,
        api_event("identity/login.json", body={"email": org.owner_email, "password": org.owner_password}),
        ctx,
    )
    return {"Authorization": "Bearer " + reply.data["token"]}


def _authorize(secret: str, ctx) -> bool:
    from authorizer.handler import handler

    event = load_event("authorizer/request.json")
    event["headers"] = {"VF-ORG-ID": secret}
    try:
        handler(event, ctx)
    except Exception as exc:  # noqa: BLE001 - the authorizer's contract is a bare "Unauthorized"
        assert str(exc) == "Unauthorized"
        return False
    return True


def _balance(billing, secret: str, ctx) -> int:
    return call(billing, api_event("billing/balance.json", headers={"VF-ORG-ID": secret}), ctx).status


def _whoami(identity, secret: str, ctx) -> int:
    return call(identity, api_event("identity/whoami.json", headers={"VF-ORG-ID": secret}), ctx).status


def _cached(secret: str) -> bool:
    return auth._cache.get(orgs.hash_key(secret)) is not None  # noqa: SLF001 - what the test is about


def test_an_owner_issues_lists_and_revokes_keys(identity, billing, org, lambda_context):
    owner = _bearer(identity, org, lambda_context)
    issued = call(
        identity,
        api_event("identity/list_keys.json", headers=owner, method="POST", body={"name": "ci"}),
        lambda_context,
    )
    assert issued.status == 201 and issued.data["secret"].startswith(issued.data["key"]["prefix"] + "_")
    listed = call(identity, api_event("identity/list_keys.json", headers=owner), lambda_context)
    assert {k["name"] for k in listed.data["keys"]} == {"test", "ci"}
    assert "secret" not in str(listed.body) and "hash" not in str(listed.body)

    secret, key_id = issued.data["secret"], issued.data["key"]["id"]
    assert _whoami(identity, secret, lambda_context) == 200
    assert _balance(billing, secret, lambda_context) == 200
    assert _authorize(secret, lambda_context) and _cached(secret)

    revoked = call(
        identity,
        api_event(
            "identity/revoke_key.json",
            headers=owner,
            path=f"/v1/keys/{key_id}",
            path_params={"key_id": key_id},
        ),
        lambda_context,
    )
    assert revoked.status == 200 and revoked.data["revokedAt"]
    # Refused on the very next request: here, in another function, and by the authorizer.
    assert _whoami(identity, secret, lambda_context) == 401
    assert _balance(billing, secret, lambda_context) == 401
    assert not _authorize(secret, lambda_context)
    assert _balance(billing, org.key, lambda_context) == 200  # the org's other key is untouched


def test_another_orgs_key_id_is_404_and_untouched(identity, org, other_org, lambda_context):
    foreign = orgs.list_keys(other_org.id)[0].id
    owner = _bearer(identity, org, lambda_context)
    reply = call(
        identity,
        api_event(
            "identity/revoke_key.json",
            headers=owner,
            path=f"/v1/keys/{foreign}",
            path_params={"key_id": foreign},
        ),
        lambda_context,
    )
    assert reply.status == 404 and reply.body["error"] == "NOT_FOUND"
    assert other_org.id not in str(reply.body)
    assert orgs.list_keys(other_org.id)[0].revoked_at is None
    listed = call(identity, api_event("identity/list_keys.json", headers=owner), lambda_context)
    assert foreign not in str(listed.body)


def test_an_api_key_cannot_mint_more_keys(identity, org, lambda_context):
    reply = call(
        identity,
        api_event("identity/list_keys.json", headers=org.headers, method="POST", body={}),
        lambda_context,
    )
    assert reply.status == 403 and reply.body["error"] == "FORBIDDEN"


def test_a_key_revoked_by_another_process_is_refused_while_this_one_still_caches_it(
    identity, billing, org, lambda_context
):
    key_id = orgs.list_keys(org.id)[0].id
    assert _balance(billing, org.key, lambda_context) == 200
    assert _authorize(org.key, lambda_context)

    # What `verriflo key revoke` or a warm identity function elsewhere does: it cannot reach this
    # process's cache, which still holds the key.
    orgs.revoke_key(org.id, key_id)
    assert _cached(org.key)

    assert _balance(billing, org.key, lambda_context) == 401
    assert _whoami(identity, org.key, lambda_context) == 401
    assert not _authorize(org.key, lambda_context)
    # The marker outlives every cache entry that may hold the key (twice the TTL, plus a minute).
    ttl_ms = cache.redis_client().pttl(f"revoked-key:{key_id}")
    assert ttl_ms > 2 * settings.api_settings().auth_cache_ttl_s * 1000


def test_without_redis_a_cached_key_is_checked_in_the_database(org, monkeypatch):
    from pymongo import MongoClient

    assert auth.authenticate(org.headers).org_id == org.id
    assert _cached(org.key)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")  # nothing listens there
    settings.reset_settings()
    cache.reset_client()

    # Redis cannot say whether the key was revoked, so the database decides: still valid...
    assert auth.authenticate(org.headers).org_id == org.id
    # Revoking needs Redis (to tell every process): without it, 503 and nothing is written...
    key_id = orgs.list_keys(org.id)[0].id
    with pytest.raises(ServiceUnavailable):
        orgs.revoke_key(org.id, key_id)
    assert orgs.list_keys(org.id)[0].revoked_at is None
    # ...and a key revoked in the database (written directly here) is refused though still cached.
    store = settings.store_settings()
    with MongoClient(store.mongodb_uri) as client:
        client[store.mongodb_database]["api_keys"].update_one(
            {"orgId": org.id}, {"$set": {"revokedAt": orgs.now()}}
        )
    with pytest.raises(auth.Unauthorized):
        auth.authenticate(org.headers)
