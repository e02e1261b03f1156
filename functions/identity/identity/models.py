"""Identity request and answer models (camelCase JSON; requests are strict)."""

# No `from __future__ import annotations`: pydantic would evaluate each string annotation as it
# creates every model class below, a cost every cold start pays.

from datetime import datetime
from typing import Literal

from pydantic import Field
from verriflo.models import ApiModel, StrictApiModel

Email = Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
NewPassword = Field(min_length=12, max_length=1024, description="at least 12 characters")
TeamRole = Literal["owner", "admin", "member", "viewer"]


class LoginRequest(StrictApiModel):
    email: str = Email
    password: str = Field(min_length=1, max_length=1024)


class UserInfo(ApiModel):
    id: str
    email: str
    name: str = ""
    role: str
    org_id: str


class LoginResult(ApiModel):
    token: str
    token_type: str = Field(default="Bearer")
    expires_in: int
    user: UserInfo


class WhoAmI(ApiModel):
    org_id: str
    org_name: str
    plan: str
    via: str
    principal: str
    role: str
    user_id: str | None = Field(default=None, description="the dashboard user (null for an API key)")
    email: str | None = None
    name: str | None = None
    expires_at: datetime | None = Field(
        default=None, description="when the bearer token expires (null for a key)"
    )


class LogoutRequest(StrictApiModel):
    """Nothing to say: the body may be absent or `{}`."""


class LoggedOut(ApiModel):
    logged_out: bool = True


class PasswordChange(StrictApiModel):
    current_password: str = Field(min_length=1, max_length=1024)
    new_password: str = NewPassword


class PasswordChanged(ApiModel):
    changed: bool = True


class TeamUser(ApiModel):
    user_id: str
    email: str
    name: str
    role: TeamRole
    created_at: datetime
    last_login_at: datetime | None = None


class TeamUserList(ApiModel):
    users: list[TeamUser]


class TeamUserOne(ApiModel):
    user: TeamUser


class NewTeamUser(StrictApiModel):
    email: str = Email
    name: str = Field(min_length=1, max_length=200)
    role: TeamRole
    password: str = NewPassword


class TeamRoleChange(StrictApiModel):
    role: TeamRole


class TeamUserDeleted(ApiModel):
    deleted: bool = True


class KeyInfo(ApiModel):
    id: str
    name: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None = Field(default=None)


class KeyList(ApiModel):
    keys: list[KeyInfo]


class NewKeyRequest(StrictApiModel):
    name: str = Field(default="default", min_length=1, max_length=100)


class NewKey(ApiModel):
    key: KeyInfo
    secret: str = Field(description="The API key itself: shown once, store it now")
