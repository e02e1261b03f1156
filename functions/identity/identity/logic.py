"""Identity logic: dashboard login (throttled per account and source), sessions (whoami, logout,
password change), and key management. The team's users are `identity.team`."""

from __future__ import annotations

from datetime import UTC, datetime

from verriflo import auth, orgs
from verriflo.auth import OrgContext
from verriflo.errors import Forbidden, RateLimited, Unauthorized

from identity import throttle
from identity.models import (
    KeyInfo,
    KeyList,
    LoggedOut,
    LoginRequest,
    LoginResult,
    NewKey,
    NewKeyRequest,
    PasswordChange,
    PasswordChanged,
    UserInfo,
    WhoAmI,
)


def _throttled(email: str, source_ip: str) -> None:
    wait = throttle.attempt(email, source_ip)
    if wait:
        raise RateLimited(
            "Too many sign-in attempts from this address; retry later.", headers={"Retry-After": str(wait)}
        )


def login(body: LoginRequest, source_ip: str) -> LoginResult:
    """Check the password (throttled per account and source address, see `throttle`) and issue a token."""
    _throttled(body.email, source_ip)
    # A wrong password raises Unauthorized here and the attempt stays counted.
    token, expires_in, user = auth.login(body.email, body.password)
    throttle.succeeded(body.email, source_ip)
    return LoginResult(
        token=token,
        expires_in=expires_in,
        user=UserInfo(id=user.id, email=user.email, name=user.name, role=user.role, org_id=user.org_id),
    )


def whoami(org: OrgContext) -> WhoAmI:
    """The authenticated caller; for a dashboard token also the user and when the token expires."""
    answer = WhoAmI(
        org_id=org.org_id,
        org_name=org.org_name,
        plan=org.plan,
        via=org.via,
        principal=org.principal,
        role=org.role,
    )
    if org.via != "jwt":
        return answer
    user = _session_user(org)
    return answer.model_copy(
        update={
            "user_id": user.id,
            "email": user.email,
            "name": user.name,
            "expires_at": datetime.fromtimestamp(org.expires_at, UTC),
        }
    )


def _session_user(org: OrgContext) -> orgs.User:
    """The dashboard user behind a token (a key is Forbidden: it has no session)."""
    if org.via != "jwt":
        raise Forbidden("Only a dashboard session can do this; an API key has none.")
    user = orgs.get_user(org.principal)
    if user is None or user.org_id != org.org_id:
        raise Unauthorized("The bearer token is not valid.")
    return user


def logout(org: OrgContext) -> LoggedOut:
    """End the session of the token presented: it is refused from now on (other sessions go on)."""
    user = _session_user(org)
    orgs.end_session(user.id, org.session_id)
    return LoggedOut()


def change_password(org: OrgContext, body: PasswordChange, source_ip: str) -> PasswordChanged:
    """A new password, given the current one; every other session of the user ends. Wrong current
    passwords count as failed sign-ins (`throttle`), so a borrowed session cannot guess it."""
    user = _session_user(org)
    _throttled(user.email, source_ip)
    if not auth.verify_password(user.password_hash, body.current_password):
        raise Forbidden("The current password is wrong.")
    throttle.succeeded(user.email, source_ip)
    orgs.set_password(org.org_id, user.id, auth.hash_password(body.new_password), keep_session=org.session_id)
    return PasswordChanged()


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
