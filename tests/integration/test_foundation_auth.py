"""Who may call: org keys, revoked keys, dashboard logins and tokens, the authorizer, and logs."""

from __future__ import annotations

import json
import time

import jwt
import pytest
from support import api_event, call, load_event
from verriflo import auth, orgs


@pytest.fixture
def identity():
    from identity.handler import handler

    return handler


def test_a_valid_key_reaches_the_route_and_names_its_org(identity, org, lambda_context):
    reply = call(identity, api_event("identity/whoami.json", headers=org.headers), lambda_context)
    assert reply.status == 200
    assert reply.data["orgId"] == org.id and reply.data["via"] == "api_key"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"VF-ORG-ID": ""},
        {"VF-ORG-ID": "vfk_00000000_unknown"},
        {"VF-ORG-ID": "sk_live_other_vendor"},
        {"Authorization": "Bearer not.a.jwt"},
    ],
)
def test_missing_or_unknown_credentials_get_401_in_the_envelope(identity, org, lambda_context, headers):
    reply = call(identity, api_event("identity/whoami.json", headers=headers), lambda_context)
    assert reply.status == 401
    assert reply.body["success"] is False and reply.body["error"] == "UNAUTHORIZED"
    assert "orgId" not in json.dumps(reply.body)


def test_a_revoked_key_gets_401(identity, org, lambda_context):
    key_id = orgs.list_keys(org.id)[0].id
    orgs.revoke_key(org.id, key_id)
    auth.clear_cache()
    reply = call(identity, api_event("identity/whoami.json", headers=org.headers), lambda_context)
    assert reply.status == 401


def test_the_key_never_appears_in_logs(identity, org, lambda_context, capsys):
    call(identity, api_event("identity/whoami.json", headers=org.headers), lambda_context)
    call(identity, api_event("identity/whoami.json", headers={"VF-ORG-ID": org.key + "x"}), lambda_context)
    out = capsys.readouterr()
    assert org.key not in out.out + out.err
    assert org.key[len("vfk_00000000_") :] not in out.out + out.err


def _login(identity, org, ctx, password=None):
    return call(
        identity,
        api_event(
            "identity/login.json", body={"email": org.owner_email, "password": password or org.owner_password}
        ),
        ctx,
    )


def test_dashboard_login_returns_a_token_that_authenticates(identity, org, lambda_context):
    reply = _login(identity, org, lambda_context)
    assert reply.status == 200 and reply.data["tokenType"] == "Bearer"
    token = reply.data["token"]
    me = call(
        identity,
        api_event("identity/whoami.json", headers={"Authorization": f"Bearer {token}"}),
        lambda_context,
    )
    assert me.status == 200 and me.data["via"] == "jwt" and me.data["orgId"] == org.id


def test_a_wrong_password_and_an_unknown_email_look_the_same(identity, org, lambda_context):
    wrong = _login(identity, org, lambda_context, password="nope")
    unknown = call(
        identity,
        api_event("identity/login.json", body={"email": "who@nowhere.example", "password": "x"}),
        lambda_context,
    )
    assert wrong.status == unknown.status == 401
    assert wrong.body == unknown.body


def test_login_attempts_from_one_source_are_throttled(identity, org, lambda_context):
    statuses = [_login(identity, org, lambda_context, password="guess").status for _ in range(11)]
    assert statuses[:10] == [401] * 10
    assert statuses[10] == 429


@pytest.mark.parametrize("mutate", ["expired", "tampered", "other_secret"])
def test_expired_tampered_or_foreign_tokens_get_401(identity, org, lambda_context, mutate):
    from verriflo.secrets import get_secret

    token = _login(identity, org, lambda_context).data["token"]
    claims = jwt.decode(token, options={"verify_signature": False})
    if mutate == "expired":
        claims |= {
            "iat": int(time.time()) - 7200,
            "nbf": int(time.time()) - 7200,
            "exp": int(time.time()) - 60,
        }
        token = jwt.encode(claims, get_secret("verriflo/jwt-secret"), algorithm="HS256")
    elif mutate == "tampered":
        claims["org"] = "org_someone_else"
        head, _, sig = token.split(".")
        body = jwt.encode(claims, "x", algorithm="HS256").split(".")[1]
        token = f"{head}.{body}.{sig}"
    else:
        token = jwt.encode(claims, "another-secret-another-secret-another", algorithm="HS256")
    reply = call(
        identity,
        api_event("identity/whoami.json", headers={"Authorization": f"Bearer {token}"}),
        lambda_context,
    )
    assert reply.status == 401 and reply.body["error"] == "UNAUTHORIZED"


def test_the_authorizer_allows_a_key_with_the_org_context(org, lambda_context):
    from authorizer.handler import handler

    event = load_event("authorizer/request.json")
    event["headers"] = {"VF-ORG-ID": org.key}
    result = handler(event, lambda_context)
    assert result["policyDocument"]["Statement"][0]["Effect"] == "Allow"
    assert result["context"]["orgId"] == org.id
    assert org.key not in json.dumps(result)


def test_the_authorizer_rejects_an_unknown_key_as_unauthorized(org, lambda_context):
    from authorizer.handler import handler

    event = load_event("authorizer/request.json")
    event["headers"] = {"VF-ORG-ID": "vfk_deadbeef_unknown"}
    with pytest.raises(Exception, match="^Unauthorized$"):
        handler(event, lambda_context)


def test_functions_trust_the_authorizer_context_when_the_platform_gives_one(identity, org, lambda_context):
    event = api_event("identity/whoami.json", headers={})
    event["requestContext"]["authorizer"] = auth.authenticate(org.headers).to_authorizer_context()
    reply = call(identity, event, lambda_context)
    assert reply.status == 200 and reply.data["orgId"] == org.id
