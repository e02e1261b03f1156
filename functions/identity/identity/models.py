"""Identity request and answer models (camelCase JSON; requests are strict)."""

# No `from __future__ import annotations`: pydantic would evaluate each string annotation as it
# creates every model class below, a cost every cold start pays.

from datetime import datetime

from pydantic import Field
from verriflo.models import ApiModel, StrictApiModel


class LoginRequest(StrictApiModel):
    email: str = Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+$")
    password: str = Field(min_length=1, max_length=1024)


class UserInfo(ApiModel):
    id: str
    email: str
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
