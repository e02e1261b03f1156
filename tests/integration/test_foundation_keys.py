"""API key management through the dashboard: owners manage their own org's keys, nobody else's."""

from __future__ import annotations

import pytest
from support import api_event, call
from verriflo import auth


@pytest.fixture
def identity():
    from identity.handler import handler

    return handler


def _bearer(identity, org, ctx) -> dict[str, str]:
    reply = call(
        identity,
        api_event("identity/login.json", body={"email": org.owner_email, "password": org.owner_password}),
        ctx,
    )
    return {"Authorization": "Bearer " + reply.data["token"]}


def test_an_owner_issues_lists_and_revokes_keys(identity, org, lambda_context):
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

    key_id = issued.data["key"]["id"]
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
    auth.clear_cache()
    denied = call(
        identity,
        api_event("identity/whoami.json", headers={"VF-ORG-ID": issued.data["secret"]}),
        lambda_context,
    )
    assert denied.status == 401


def test_another_orgs_key_id_is_404_and_untouched(identity, org, other_org, lambda_context):
    from verriflo import orgs

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
