"""Identity logic: dashboard login (rate limited per source), whoami, and key management."""

# No `from __future__ import annotations`: pydantic would evaluate each string annotation as it
# creates every model class below, a cost every cold start pays.

from datetime import datetime

from pydantic import Field
from verriflo import auth, orgs, ratelimit
from verriflo.auth import OrgContext
from verriflo.errors import RateLimited
from verriflo.models import ApiModel, StrictApiModel

# Generous for people, hopeless for password guessing: per source address and per account.
LOGIN_BUDGET = {"default": {"limit": 10, "window": 300}}


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


def _throttle(subject: str) -> None:
    probe = OrgContext(
        org_id=subject, org_name="", plan="", via="login", principal="", rate_limits=LOGIN_BUDGET
    )
    decision = ratelimit.hit(probe, "login")
    if not decision.allowed:
        raise RateLimited("Too many sign-in attempts; retry later.", headers=decision.headers())


def login(body: LoginRequest, source_ip: str) -> LoginResult:
    """Check the password (throttled per address and per email) and issue a token."""
    _throttle(f"ip:{source_ip}")
    _throttle(f"email:{body.email.lower()}")
    token, expires_in, user = auth.login(body.email, body.password)
    return LoginResult(
        token=token,
        expires_in=expires_in,
        user=UserInfo(id=user.id, email=user.email, role=user.role, org_id=user.org_id),
    )


def whoami(org: OrgContext) -> WhoAmI:
    """The authenticated caller."""
    return WhoAmI(
        org_id=org.org_id,
        org_name=org.org_name,
        plan=org.plan,
        via=org.via,
        principal=org.principal,
        role=org.role,
    )


def _info(key: orgs.ApiKey) -> KeyInfo:
    return KeyInfo(
        id=key.id, name=key.name, prefix=key.prefix, created_at=key.created_at, revoked_at=key.revoked_at
    )


def list_keys(org: OrgContext) -> KeyList:
    """The org's keys."""
    return KeyList(keys=[_info(k) for k in orgs.list_keys(org.org_id)])


def issue_key(org: OrgContext, body: NewKeyRequest) -> NewKey:
    """A new key for the org."""
    issued = orgs.issue_key(org.org_id, body.name)
    return NewKey(key=_info(issued.key), secret=issued.secret)


def revoke_key(org: OrgContext, key_id: str) -> KeyInfo:
    """Revoke one of the org's keys."""
    revoked = _info(orgs.revoke_key(org.org_id, key_id))
    auth.clear_cache()
    return revoked
