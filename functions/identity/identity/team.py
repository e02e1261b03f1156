"""The org's dashboard users: list, add, change role, remove, with the rules of who may do what.

The access table lets owners and admins manage the team at all (`team`); the rules that depend on
the users involved are here: only an owner grants or takes the owner role, nobody changes their own
role or removes themselves, and the org keeps at least one owner (`orgs.change_role` and
`orgs.delete_user` check that in the same transaction as the change). A removed user's sessions end
with them: their tokens name a user that no longer exists.
"""

from __future__ import annotations

from verriflo import auth, orgs
from verriflo.auth import OrgContext
from verriflo.errors import Forbidden

from identity.models import NewTeamUser, TeamRoleChange, TeamUser, TeamUserDeleted, TeamUserList, TeamUserOne


def _info(user: orgs.User) -> TeamUser:
    return TeamUser(
        user_id=user.id,
        email=user.email,
        name=user.name,
        role=user.role,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
    )


def list_users(org: OrgContext) -> TeamUserList:
    """Every user of the org."""
    return TeamUserList(users=[_info(u) for u in orgs.list_users(org.org_id)])


def _owner_only(org: OrgContext, *roles: str) -> None:
    if "owner" in roles and org.role != "owner":
        raise Forbidden("Only an owner can grant or take the owner role, or remove an owner.")


def create_user(org: OrgContext, body: NewTeamUser) -> TeamUserOne:
    """Add a user with a first password (they change it once signed in); 409 if the email is taken."""
    _owner_only(org, body.role)
    user = orgs.create_user(
        org.org_id, body.email, auth.hash_password(body.password), role=body.role, name=body.name
    )
    return TeamUserOne(user=_info(user))


def _not_self(org: OrgContext, user_id: str, what: str) -> None:
    if org.via == "jwt" and org.principal == user_id:
        raise Forbidden(f"You cannot {what} yourself; ask another owner or admin.")


def change_role(org: OrgContext, user_id: str, body: TeamRoleChange) -> TeamUserOne:
    """Give a user another role."""
    target = orgs.get_org_user(org.org_id, user_id)
    _not_self(org, user_id, "change the role of")
    _owner_only(org, target.role, body.role)
    return TeamUserOne(user=_info(orgs.change_role(org.org_id, user_id, body.role)))


def remove_user(org: OrgContext, user_id: str) -> TeamUserDeleted:
    """Remove a user; their sessions end."""
    target = orgs.get_org_user(org.org_id, user_id)
    _not_self(org, user_id, "remove")
    _owner_only(org, target.role)
    orgs.delete_user(org.org_id, user_id)
    return TeamUserDeleted()
