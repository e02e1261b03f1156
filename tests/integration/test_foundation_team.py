"""The Console's account and team routes: whoami for a session, signing out, changing one's password,
and the org's users (list, add, change role, remove) with the role rules, through the identity
function's Lambda handler against the real MongoDB-wire server and Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from support import api_event, call
from verriflo import auth, db, orgs
from verriflo.errors import Conflict

PASSWORD = "a password long enough"


@pytest.fixture
def identity():
    from identity.handler import handler

    return handler


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _sign_in(email: str, password: str = PASSWORD) -> dict[str, str]:
    token, _, _ = auth.login(email, password)
    return _bearer(token)


def _user(org, role: str, name: str | None = None) -> tuple[orgs.User, dict[str, str]]:
    """A user of `org` with `role`, signed in."""
    email = f"{name or role}-{org.id[-6:]}@team.example"
    user = orgs.create_user(org.id, email, auth.hash_password(PASSWORD), role=role, name=name or role.title())
    return user, _sign_in(email)


def _owner(org) -> dict[str, str]:
    return _sign_in(org.owner_email, org.owner_password)


def _whoami(identity, headers, ctx):
    return call(identity, api_event("identity/whoami.json", headers=headers), ctx)


def _team(identity, ctx, headers, method="GET", user_id=None, body=None):
    if user_id is None:
        event = api_event(
            "identity/team_add.json" if method == "POST" else "identity/team_list.json",
            headers=headers,
            body=body,
        )
    else:
        event = api_event(
            "identity/team_change_role.json" if method == "PATCH" else "identity/team_remove.json",
            headers=headers,
            body=body,
            path=f"/v1/team/users/{user_id}",
            path_params={"user_id": user_id},
        )
    return call(identity, event, ctx)


def _stored_users(org_id: str) -> list[dict]:
    return sorted(
        (
            {k: v for k, v in d.items() if k != "sessions"}
            for d in db.collection("users").find({"orgId": org_id})
        ),
        key=lambda d: d["_id"],
    )


# --- sessions ------------------------------------------------------------------------------------


def test_whoami_names_the_signed_in_user_and_when_the_token_expires(identity, org, lambda_context):
    user, headers = _user(org, "member", "Ada Lovelace")
    before = datetime.now(UTC)
    data = _whoami(identity, headers, lambda_context).data
    assert (data["userId"], data["email"], data["name"], data["role"]) == (
        user.id,
        user.email,
        "Ada Lovelace",
        "member",
    )
    expires = datetime.fromisoformat(data["expiresAt"])
    ttl = timedelta(seconds=auth.secret_settings().jwt_ttl_s)
    assert before + ttl - timedelta(seconds=5) <= expires <= datetime.now(UTC) + ttl


def test_whoami_with_a_key_has_no_user(identity, org, lambda_context):
    data = _whoami(identity, org.headers, lambda_context).data
    assert data["via"] == "api_key"
    assert [data[f] for f in ("userId", "email", "name", "expiresAt")] == [None] * 4


def test_signing_out_ends_that_session_only(identity, org, lambda_context):
    _, laptop = _user(org, "viewer")
    phone = _sign_in(f"viewer-{org.id[-6:]}@team.example")
    reply = call(identity, api_event("identity/logout.json", headers=laptop), lambda_context)
    assert reply.status == 200 and reply.data == {"loggedOut": True}
    gone = _whoami(identity, laptop, lambda_context)
    assert gone.status == 401 and gone.body["error"] == "UNAUTHORIZED"
    assert _whoami(identity, phone, lambda_context).status == 200
    # the authorizer refuses it too
    from authorizer.handler import handler as authorizer
    from support import load_event

    with pytest.raises(Exception, match="Unauthorized"):
        authorizer(load_event("authorizer/request.json") | {"headers": laptop}, lambda_context)


def test_an_api_key_has_no_session_to_end(identity, org, lambda_context):
    reply = call(identity, api_event("identity/logout.json", headers=org.headers), lambda_context)
    assert reply.status == 403 and reply.body["error"] == "FORBIDDEN"


def _change_password(identity, headers, ctx, current, new):
    body = {"currentPassword": current, "newPassword": new}
    return call(identity, api_event("identity/change_password.json", headers=headers, body=body), ctx)


def test_changing_the_password_ends_the_other_sessions(identity, org, lambda_context):
    user, here = _user(org, "admin")
    elsewhere = _sign_in(user.email)
    reply = _change_password(identity, here, lambda_context, PASSWORD, "a brand new passphrase")
    assert reply.status == 200 and reply.data == {"changed": True}
    assert _whoami(identity, here, lambda_context).status == 200  # the session that changed it goes on
    assert _whoami(identity, elsewhere, lambda_context).status == 401
    with pytest.raises(Exception, match="wrong"):
        auth.login(user.email, PASSWORD)
    assert auth.login(user.email, "a brand new passphrase")[0]


@pytest.mark.parametrize(
    ("current", "new", "status", "error"),
    [
        ("not the password", "a brand new passphrase", 403, "FORBIDDEN"),
        (PASSWORD, "too short", 400, "VALIDATION_ERROR"),
        (PASSWORD, "", 400, "VALIDATION_ERROR"),
    ],
)
def test_a_wrong_current_password_or_a_short_new_one_changes_nothing(
    identity, org, lambda_context, current, new, status, error
):
    user, here = _user(org, "viewer")
    elsewhere = _sign_in(user.email)
    stored = orgs.get_user(user.id).password_hash
    reply = _change_password(identity, here, lambda_context, current, new)
    assert reply.status == status and reply.body["error"] == error
    if status == 400:
        assert "newPassword" in reply.body["message"]
    assert orgs.get_user(user.id).password_hash == stored
    assert _whoami(identity, elsewhere, lambda_context).status == 200


def test_guessing_the_current_password_is_throttled_like_sign_in(identity, org, lambda_context):
    _, here = _user(org, "member")
    answers = [
        _change_password(identity, here, lambda_context, f"guess {n}", "a brand new passphrase").status
        for n in range(11)
    ]
    assert answers[:10] == [403] * 10 and answers[10] == 429


# --- the team --------------------------------------------------------------------------------------


def test_every_role_reads_the_team(identity, org, lambda_context):
    member, _ = _user(org, "member")
    _, viewer = _user(org, "viewer")
    _sign_in(member.email)  # a sign-in is recorded
    users = {u["email"]: u for u in _team(identity, lambda_context, viewer).data["users"]}
    assert set(users) == {org.owner_email, member.email, f"viewer-{org.id[-6:]}@team.example"}
    entry = users[member.email]
    assert set(entry) == {"userId", "email", "name", "role", "createdAt", "lastLoginAt"}
    assert (entry["userId"], entry["role"], entry["name"]) == (member.id, "member", "Member")
    assert entry["lastLoginAt"] is not None
    assert "password" not in str(users).lower() and "session" not in str(users).lower()


def test_an_admin_adds_a_member_who_can_sign_in(identity, org, lambda_context):
    _, admin = _user(org, "admin")
    body = {
        "email": "New.Teacher@School.example",
        "name": "New Teacher",
        "role": "member",
        "password": PASSWORD,
    }
    reply = _team(identity, lambda_context, admin, "POST", body=body)
    assert reply.status == 201
    added = reply.data["user"]
    assert (added["email"], added["name"], added["role"], added["lastLoginAt"]) == (
        "new.teacher@school.example",
        "New Teacher",
        "member",
        None,
    )
    assert (
        _whoami(identity, _sign_in("new.teacher@school.example"), lambda_context).data["userId"]
        == added["userId"]
    )
    again = _team(identity, lambda_context, admin, "POST", body=body | {"name": "Someone else"})
    assert again.status == 409 and again.body["error"] == "CONFLICT"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "x@y.example", "name": "X", "role": "member", "password": "short"}, "password"),
        ({"email": "x@y.example", "name": "X", "role": "superuser", "password": PASSWORD}, "role"),
        ({"email": "x@y.example", "name": "X", "role": "developer", "password": PASSWORD}, "role"),
        ({"email": "not an email", "name": "X", "role": "member", "password": PASSWORD}, "email"),
        ({"email": "x@y.example", "role": "member", "password": PASSWORD}, "name"),
        (
            {"email": "x@y.example", "name": "X", "role": "member", "password": PASSWORD, "admin": True},
            "admin",
        ),
    ],
)
def test_bad_new_users_are_400_and_nothing_is_written(identity, org, lambda_context, body, field):
    owner = _owner(org)
    before = _stored_users(org.id)
    reply = _team(identity, lambda_context, owner, "POST", body=body)
    assert reply.status == 400 and reply.body["error"] == "VALIDATION_ERROR"
    assert field in reply.body["message"]
    assert _stored_users(org.id) == before


def test_only_an_owner_adds_an_owner(identity, org, lambda_context):
    _, admin = _user(org, "admin")
    body = {"email": "boss@school.example", "name": "Boss", "role": "owner", "password": PASSWORD}
    refused = _team(identity, lambda_context, admin, "POST", body=body)
    assert refused.status == 403 and "owner" in refused.body["message"]
    assert orgs.find_user_by_email("boss@school.example") is None
    assert _team(identity, lambda_context, _owner(org), "POST", body=body).data["user"]["role"] == "owner"


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_members_and_viewers_cannot_change_the_team(identity, org, lambda_context, role):
    target, _ = _user(org, "viewer", "target")
    _, caller = _user(org, role)
    before = _stored_users(org.id)
    body = {"email": "x@school.example", "name": "X", "role": "viewer", "password": PASSWORD}
    for method, user_id, payload in [
        ("POST", None, body),
        ("PATCH", target.id, {"role": "admin"}),
        ("DELETE", target.id, None),
    ]:
        reply = _team(identity, lambda_context, caller, method, user_id, payload)
        assert reply.status == 403 and reply.body["error"] == "FORBIDDEN", (method, reply.body)
    assert _stored_users(org.id) == before


def test_a_role_change_applies_to_the_users_next_request(identity, org, lambda_context):
    member, member_headers = _user(org, "member")
    _, admin = _user(org, "admin")
    reply = _team(identity, lambda_context, admin, "PATCH", member.id, {"role": "viewer"})
    assert reply.status == 200 and reply.data["user"]["role"] == "viewer"
    from billing.handler import handler as billing

    limits = api_event("billing/limits_put.json", headers=member_headers, body={"lowCredits": 5})
    assert call(billing, limits, lambda_context).status == 403
    assert _whoami(identity, member_headers, lambda_context).data["role"] == "viewer"


def test_owner_rules_for_role_changes(identity, org, lambda_context):
    owner_id = orgs.find_user_by_email(org.owner_email).id
    admin, admin_headers = _user(org, "admin")
    member, _ = _user(org, "member")
    owner = _owner(org)
    cases = [
        (admin_headers, admin.id, "viewer", 403),  # nobody changes their own role
        (owner, owner_id, "admin", 403),
        (admin_headers, owner_id, "admin", 403),  # only an owner takes the owner role
        (admin_headers, member.id, "owner", 403),  # ... or grants it
    ]
    for headers, user_id, role, status in cases:
        reply = _team(identity, lambda_context, headers, "PATCH", user_id, {"role": role})
        assert reply.status == status, (user_id, role, reply.body)
    assert orgs.get_user(owner_id).role == "owner" and orgs.get_user(member.id).role == "member"
    granted = _team(identity, lambda_context, owner, "PATCH", member.id, {"role": "owner"})
    assert granted.data["user"]["role"] == "owner"
    # now two owners: the new one may demote the first
    new_owner = _sign_in(member.email)
    assert _team(identity, lambda_context, new_owner, "PATCH", owner_id, {"role": "admin"}).status == 200


def test_the_last_owner_cannot_be_demoted_or_removed(org):
    owner_id = orgs.find_user_by_email(org.owner_email).id
    with pytest.raises(Conflict, match="last owner"):
        orgs.change_role(org.id, owner_id, "admin")
    with pytest.raises(Conflict, match="last owner"):
        orgs.delete_user(org.id, owner_id)
    assert orgs.get_user(owner_id).role == "owner"


def test_removing_a_user_ends_their_sessions(identity, org, lambda_context):
    member, member_headers = _user(org, "member")
    _, admin = _user(org, "admin")
    reply = _team(identity, lambda_context, admin, "DELETE", member.id)
    assert reply.status == 200 and reply.data == {"deleted": True}
    assert _whoami(identity, member_headers, lambda_context).status == 401
    assert orgs.get_user(member.id) is None
    assert _team(identity, lambda_context, admin, "DELETE", member.id).status == 404
    assert (
        _team(identity, lambda_context, admin, "DELETE", orgs.find_user_by_email(org.owner_email).id).status
        == 403
    )
    # nobody removes themselves
    assert (
        _team(
            identity,
            lambda_context,
            admin,
            "DELETE",
            orgs.find_user_by_email(f"admin-{org.id[-6:]}@team.example").id,
        ).status
        == 403
    )


def test_another_orgs_users_are_404_and_untouched(identity, org, other_org, lambda_context):
    theirs, _ = _user(other_org, "member")
    before = _stored_users(other_org.id)
    owner = _owner(org)
    for method, body in [("PATCH", {"role": "viewer"}), ("DELETE", None)]:
        reply = _team(identity, lambda_context, owner, method, theirs.id, body)
        assert reply.status == 404 and reply.body["error"] == "NOT_FOUND"
        assert theirs.email not in str(reply.body)
    for unknown in ("usr_000000000000000000000000", "x" * 300):
        assert _team(identity, lambda_context, owner, "PATCH", unknown, {"role": "viewer"}).status == 404
    assert _stored_users(other_org.id) == before
    listed = {u["email"] for u in _team(identity, lambda_context, owner).data["users"]}
    assert theirs.email not in listed


def test_a_stored_developer_is_read_as_a_member(identity, org, lambda_context):
    user = orgs.create_user(org.id, "legacy@team.example", auth.hash_password(PASSWORD), role="member")
    db.collection("users").update_one({"_id": user.id}, {"$set": {"role": "developer"}})
    headers = _sign_in("legacy@team.example")
    assert _whoami(identity, headers, lambda_context).data["role"] == "member"
    listed = {u["email"]: u["role"] for u in _team(identity, lambda_context, headers).data["users"]}
    assert listed["legacy@team.example"] == "member"


def test_two_owners_demoting_each_other_at_once_leave_one_owner(org):
    from concurrent.futures import ThreadPoolExecutor

    first = orgs.find_user_by_email(org.owner_email)
    second, _ = _user(org, "owner", "second")
    for _ in range(3):
        with ThreadPoolExecutor(2) as pool:
            outcomes = list(
                pool.map(
                    lambda target: _outcome(lambda: orgs.change_role(org.id, target, "admin")),
                    [first.id, second.id],
                )
            )
        owners = [u.id for u in orgs.list_users(org.id) if u.role == "owner"]
        assert len(owners) == 1, outcomes
        assert sorted(outcomes) == ["changed", "conflict"]
        orgs.change_role(org.id, first.id if owners != [first.id] else second.id, "owner")  # both again


def _outcome(change) -> str:
    try:
        change()
    except Conflict:
        return "conflict"
    return "changed"
