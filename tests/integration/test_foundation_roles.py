"""Dashboard roles over the whole API, generated from the OpenAPI document: every operation is called
in-process through its function's Lambda handler as each role of one org (owner, admin, member
and viewer tokens, and the org's API key), and the answer is 403 FORBIDDEN exactly when the access
table denies that role the route's action. Requests carry an empty JSON body, so every call the
table allows stops at validation or a missing resource and changes nothing (but signing out, which
ends the caller's session: the caller signs in again after it)."""

from __future__ import annotations

import re

import pytest
from access_support import DASHBOARD_ROLES, document_operations, handler_modules, registered_routes
from support import api_event, call, load_event
from verriflo import access, auth, orgs
from verriflo.access import Action

pytest_plugins = ["webhook_fixtures"]

CALLERS = (*DASHBOARD_ROLES, "api")
PASSWORD = "a long enough password for the role tests"


SIGN_OUT = ("POST", "/v1/auth/logout")


def _sign_in(role: str) -> dict[str, str]:
    token, _, _ = auth.login(f"{role}@roles.example", PASSWORD)
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def credentials(org, webhook_env):
    """Request headers for each role of one org: a dashboard token per role, and the org's key."""
    headers = {"api": org.headers}
    for role in DASHBOARD_ROLES:
        orgs.create_user(org.id, f"{role}@roles.example", auth.hash_password(PASSWORD), role=role)
        headers[role] = _sign_in(role)
    return headers


def _handler_of(method: str, path: str):
    function = next(r.function for r in registered_routes() if (r.method, r.path) == (method, path))
    return handler_modules()[function].handler


def _event(method: str, path: str, headers: dict[str, str]) -> dict:
    params = {name: f"x-{name}" for name in re.findall(r"{(\w+)}", path)}
    concrete = path
    for name, value in params.items():
        concrete = concrete.replace("{" + name + "}", value)
    event = api_event(
        "identity/whoami.json",
        headers=headers,
        path=concrete,
        method=method,
        path_params=params or None,
        body={} if method in ("POST", "PUT", "PATCH") else None,
    )
    event["resource"] = path
    event["requestContext"]["resourcePath"] = path
    event["requestContext"]["httpMethod"] = method
    return event


def test_every_operation_answers_403_exactly_when_the_table_denies_the_role(credentials, lambda_context):
    matrix: dict[tuple[str, str], dict[str, int]] = {}
    wrong = []
    for method, path, _ in document_operations():
        act = access.action(method, path)
        assert act is not None, f"{method} {path} has no access rule"
        handler = _handler_of(method, path)
        row = matrix.setdefault((method, path), {})
        for caller in CALLERS:
            reply = call(handler, _event(method, path, credentials[caller]), lambda_context)
            row[caller] = reply.status
            if (method, path) == SIGN_OUT and reply.status == 200:
                credentials[caller] = _sign_in(caller)
            denied = act is Action.INTERNAL or (act is not Action.PUBLIC and not access.allows(caller, act))
            forbidden = reply.status == 403 and (reply.body or {}).get("error") == "FORBIDDEN"
            if act is Action.PUBLIC:
                # Roles play no part: every dashboard role gets the same answer (a key, being another
                # kind of credential, may not), and never the table's refusal.
                same = caller == "api" or reply.status == row[CALLERS[0]]
                ok = same and not (forbidden and "role" in reply.body["message"])
            else:
                ok = forbidden if denied else reply.status not in (401, 403)
            if not ok:
                wrong.append((method, path, caller, act.value, reply.status, reply.body))
    _print(matrix)
    assert len(matrix) == len(document_operations())
    assert wrong == [], "\n".join(map(str, wrong))


def _print(matrix: dict[tuple[str, str], dict[str, int]]) -> None:
    print(f"\n{'route':70} {'action':8} " + " ".join(f"{c:>9}" for c in CALLERS))
    for (method, path), row in sorted(matrix.items(), key=lambda kv: (kv[0][1], kv[0][0])):
        act = access.action(method, path)
        cells = " ".join(f"{row[c]:>9}" for c in CALLERS)
        print(f"{method + ' ' + path:70} {act.value if act else '?':8} {cells}")


def test_the_role_travels_through_the_authorizer_context(credentials, lambda_context):
    """Behind API Gateway the function sees only what the authorizer passed on: a viewer stays one."""
    from authorizer.handler import handler as authorizer
    from webhooks.handler import handler as webhooks

    request = load_event("authorizer/request.json") | {"headers": credentials["viewer"]}
    context = authorizer(request, lambda_context)["context"]
    assert context["role"] == "viewer"

    def through_gateway(method: str, path: str) -> int:
        event = _event(method, path, {})  # no credentials: only the authorizer's context
        event["requestContext"]["authorizer"] = dict(context)
        return call(webhooks, event, lambda_context).status

    assert through_gateway("GET", "/v1/webhooks") == 200
    assert through_gateway("POST", "/v1/webhooks") == 403
