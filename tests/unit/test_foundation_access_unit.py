"""The access table: complete (every route of the OpenAPI document and of every function has a rule,
and no rule is left for a route that is gone), in agreement with how routes are registered, closed
by default, and the same as the table in the README."""

from __future__ import annotations

import re

import pytest
from access_support import DASHBOARD_ROLES, document_operations, registered_routes
from support import ROOT
from verriflo import access
from verriflo.access import Action
from verriflo.auth import OrgContext
from verriflo.errors import Forbidden

ORG_ACTIONS = {Action.READ, Action.USE, Action.MANAGE, Action.KEYS, Action.TEAM, Action.ACCOUNT}


def test_every_operation_of_the_document_has_a_rule():
    missing = [(m, p) for m, p, _ in document_operations() if access.action(m, p) is None]
    assert not missing, f"add these to verriflo.access.ROUTES: {missing}"


def test_every_registered_route_has_a_rule_and_every_rule_a_route():
    registered = {(r.method, r.path) for r in registered_routes()}
    assert len(registered) == len(registered_routes()), "a route is registered twice"
    assert sorted(registered - set(access.ROUTES)) == []
    assert sorted(set(access.ROUTES) - registered) == [], "rules for routes that no longer exist"


def test_public_and_internal_rules_agree_with_the_document():
    for method, path, operation in document_operations():
        act = access.action(method, path)
        assert (act is Action.PUBLIC) == (operation.get("security") == []), (method, path, act)
        assert (act is Action.INTERNAL) == ("internal" in operation.get("tags", [])), (method, path, act)


def test_rules_agree_with_how_each_route_is_registered():
    for route in registered_routes():
        act = access.action(route.method, route.path)
        where = (route.function, route.method, route.path, act)
        # Org routes count against a budget; public and internal ones have no org to count against.
        assert route.rate_limited == (act in ORG_ACTIONS), where
        if route.public:
            assert act is Action.PUBLIC, where
        if route.streamed:
            assert route.internal == (act is Action.INTERNAL), where


def test_an_unknown_route_is_refused_whoever_calls():
    with pytest.raises(Forbidden, match="no access rule"):
        access.admit("POST", "/v1/not-in-the-table", {}, {"orgId": "org_1", "role": "owner"})


def test_the_legacy_developer_role_is_read_as_member():
    legacy = OrgContext("org_1", "Acme", "prepaid", "jwt", "usr_1", role="developer").to_authorizer_context()
    admitted = access.admit("POST", "/v1/room/create", {}, legacy)
    assert admitted is not None and admitted.role == "member"
    with pytest.raises(Forbidden, match="member role"):
        access.admit("PUT", "/v1/billing/limits", {}, legacy)


@pytest.mark.parametrize("role", ["", "superuser", "Owner"])
def test_an_unknown_role_may_do_nothing(role):
    assert not any(access.allows(role, act) for act in Action)
    given = OrgContext("org_1", "Acme", "prepaid", "jwt", "usr_1", role).to_authorizer_context()
    with pytest.raises(Forbidden):
        access.admit("GET", "/v1/billing/balance", {}, given)


def test_an_authorizer_context_without_a_role_has_no_rights():
    given = OrgContext("org_1", "Acme", "prepaid", "api_key", "key_1").to_authorizer_context()
    del given["role"]
    with pytest.raises(Forbidden):
        access.admit("GET", "/v1/billing/balance", {}, given)


def test_an_allowed_caller_is_admitted_with_its_context():
    given = OrgContext("org_1", "Acme", "prepaid", "jwt", "usr_1", "viewer").to_authorizer_context()
    admitted = access.admit("GET", "/v1/room/{room_id}/status", {}, given)
    assert admitted is not None and (admitted.org_id, admitted.role) == ("org_1", "viewer")


def test_viewers_only_read_members_cannot_manage_and_keys_cannot_mint_keys_or_users():
    assert {r for r in DASHBOARD_ROLES if access.allows(r, Action.READ)} == set(DASHBOARD_ROLES)
    assert {r for r in (*DASHBOARD_ROLES, "api") if access.allows(r, Action.USE)} == {
        "owner",
        "admin",
        "member",
        "api",
    }
    assert not access.allows("api", Action.KEYS)
    assert not access.allows("api", Action.TEAM)
    for act in (Action.MANAGE, Action.KEYS, Action.TEAM):
        assert {r for r in (*DASHBOARD_ROLES, "api") if access.allows(r, act)} <= {"owner", "admin", "api"}
    # every dashboard user signs out and changes their own password; a key has no session
    assert {r for r in (*DASHBOARD_ROLES, "api") if access.allows(r, Action.ACCOUNT)} == set(DASHBOARD_ROLES)
    # Nothing that changes state is a read: every read rule is on a GET.
    assert {m for (m, _), act in access.ROUTES.items() if act is Action.READ} == {"GET"}


def _readme_table() -> dict[str, dict[str, bool]]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("### Who may do what") :]
    rows = re.findall(r"^\| `(\w+)` \|(.*)\|$", section, flags=re.MULTILINE)
    header = re.search(r"^\| Action \|(.*)\|$", section, flags=re.MULTILINE)
    assert header is not None and rows
    roles = [re.sub(r"[`*]", "", c).strip().split()[0] for c in header.group(1).split("|")[1:]]
    table = {}
    for act, cells in rows:
        marks = [c.strip() for c in cells.split("|")[1:]]
        table[act] = {role: mark == "yes" for role, mark in zip(roles, marks, strict=True)}
    return table


def test_the_readme_table_is_the_code():
    table = _readme_table()
    assert set(table) == {a.value for a in ORG_ACTIONS}
    for act, row in table.items():
        assert set(row) == set(access.ROLE_ACTIONS), row
        for role, allowed in row.items():
            assert allowed == access.allows(role, Action(act)), (act, role)


def test_the_document_names_the_roles_of_each_org_route_and_its_403():
    for method, path, operation in document_operations():
        act = access.action(method, path)
        if act not in ORG_ACTIONS:
            assert "x-verriflo-roles" not in operation, (method, path)
            continue
        roles = [r for r in access.ROLE_ACTIONS if access.allows(r, act)]
        assert operation["x-verriflo-roles"] == roles, (method, path)
        if len(roles) < len(access.ROLE_ACTIONS):
            assert "403" in operation["responses"], (method, path)


def test_a_refusal_names_the_caller_and_who_may():
    key = OrgContext("org_1", "Acme", "prepaid", "api_key", "key_1").to_authorizer_context()
    refusal = "^The API key cannot manage API keys; that needs the owner or admin role"
    with pytest.raises(Forbidden, match=refusal):
        access.admit("POST", "/v1/keys", {}, key)
