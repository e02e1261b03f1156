"""Identity logic: dashboard login (throttled per account and source), whoami, and key management."""

from __future__ import annotations

from verriflo import auth, orgs
from verriflo.auth import OrgContext
from verriflo.errors import RateLimited

from identity import throttle
from identity.models import (
    KeyInfo,
    KeyList,
    LoginRequest,
    LoginResult,
    NewKey,
    NewKeyRequest,
    UserInfo,
    WhoAmI,
)


def login(body: LoginRequest, source_ip: str) -> LoginResult:
    """Check the password (throttled per account and source address, see `throttle`) and issue a token."""
    wait = throttle.attempt(body.email, source_ip)
    if wait:
        raise RateLimited(
            "Too many sign-in attempts from this address; retry later.", headers={"Retry-After": str(wait)}
        )
    # A wrong password raises Unauthorized here and the attempt stays counted.
    token, expires_in, user = auth.login(body.email, body.password)
    throttle.succeeded(body.email, source_ip)
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
    auth.forget_key(key_id)
    return revoked
