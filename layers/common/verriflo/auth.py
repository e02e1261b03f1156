"""Who is calling: the org key (`VF-ORG-ID`) or a dashboard JWT, turned into an OrgContext.

`authenticate(headers)` is the single implementation used by the API Gateway authorizer and by the
functions themselves when the platform gave them no authorizer context (the free LocalStack runs
no authorizers; in-process tests have none), so a request without valid credentials never reaches
route logic anywhere. Nothing here ever logs or returns a key or a token.
"""

from __future__ import annotations

import json
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from secrets import token_urlsafe
from typing import Any

from verriflo import orgs
from verriflo.errors import Unauthorized
from verriflo.secrets import get_secret
from verriflo.settings import api_settings, secret_settings

ORG_KEY_HEADER = "vf-org-id"


@dataclass(frozen=True, slots=True)
class OrgContext:
    """The authenticated caller: which org, through which credential, with which budgets."""

    org_id: str
    org_name: str
    plan: str
    via: str  # "api_key" or "jwt"
    principal: str  # key id or user id
    role: str = "api"
    rate_limits: dict[str, dict[str, int]] = field(default_factory=dict)
    session_id: str = ""  # a dashboard token's session (`sid`); "" for keys
    expires_at: int = 0  # a dashboard token's expiry, epoch seconds; 0 for keys

    def to_authorizer_context(self) -> dict[str, str]:
        """Flat string values, as API Gateway requires of an authorizer's context."""
        return {
            "orgId": self.org_id,
            "orgName": self.org_name,
            "plan": self.plan,
            "via": self.via,
            "principal": self.principal,
            "role": self.role,
            "rateLimits": json.dumps(self.rate_limits),
            "sessionId": self.session_id,
            "expiresAt": str(self.expires_at),
        }

    @classmethod
    def from_authorizer_context(cls, ctx: Mapping[str, Any]) -> OrgContext:
        """Rebuild the context an authorizer produced."""
        limits = ctx.get("rateLimits") or "{}"
        return cls(
            org_id=str(ctx["orgId"]),
            org_name=str(ctx.get("orgName", "")),
            plan=str(ctx.get("plan", "")),
            via=str(ctx.get("via", "api_key")),
            principal=str(ctx.get("principal", "")),
            role=str(orgs.canonical_role(ctx.get("role", ""))),  # none given: no rights (fail closed)
            rate_limits=json.loads(limits) if isinstance(limits, str) else dict(limits),
            session_id=str(ctx.get("sessionId") or ""),
            expires_at=int(ctx.get("expiresAt") or 0),
        )


class _TtlCache:
    """A small bounded in-process cache: warm invocations skip the database for known keys (a hit
    is still checked against the revocation markers in Redis, see `authenticate_key`)."""

    def __init__(self, size: int = 1024) -> None:
        self._data: OrderedDict[str, tuple[float, OrgContext]] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()

    def get(self, key: str) -> OrgContext | None:
        with self._lock:
            hit = self._data.get(key)
            if hit is None or hit[0] < time.monotonic():
                self._data.pop(key, None)
                return None
            self._data.move_to_end(key)
            return hit[1]

    def put(self, key: str, value: OrgContext, ttl: float) -> None:
        if ttl <= 0:
            return
        with self._lock:
            self._data[key] = (time.monotonic() + ttl, value)
            self._data.move_to_end(key)
            while len(self._data) > self._size:
                self._data.popitem(last=False)

    def drop(self, key: str) -> None:
        with self._lock:
            self._data.pop(key, None)

    def drop_principal(self, principal: str) -> None:
        with self._lock:
            for key in [k for k, (_, ctx) in self._data.items() if ctx.principal == principal]:
                del self._data[key]

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


_cache = _TtlCache()


def clear_cache() -> None:
    """Forget every cached credential (tests, and after an org's budgets change)."""
    _cache.clear()


def forget_key(key_id: str) -> None:
    """Forget a revoked key in this process at once (other processes see the revocation marker)."""
    _cache.drop_principal(key_id)


def _header(headers: Mapping[str, Any] | None, name: str) -> str | None:
    for key, value in (headers or {}).items():
        if key.lower() == name:
            return value if isinstance(value, str) else None
    return None


def _org_context(
    org: orgs.Org, via: str, principal: str, role: str, session_id: str = "", expires_at: int = 0
) -> OrgContext:
    return OrgContext(
        org_id=org.id,
        org_name=org.name,
        plan=org.plan,
        via=via,
        principal=principal,
        role=role,
        rate_limits={g: lim.model_dump() for g, lim in org.rate_limits.items()},
        session_id=session_id,
        expires_at=expires_at,
    )


def authenticate_key(secret: str) -> OrgContext:
    """The org behind an API key, or Unauthorized."""
    digest = orgs.hash_key(secret)
    cached = _cache.get(digest)
    if cached is not None:
        # One Redis read keeps the cache honest: a key revoked by any process is refused on its
        # very next request everywhere. When Redis cannot say, the database decides.
        if orgs.revocation_announced(cached.principal) is False:
            return cached
        _cache.drop(digest)
    if not secret.startswith(orgs.KEY_SCHEME) or len(secret) > 200:
        raise Unauthorized("The VF-ORG-ID key is not valid.")
    key = orgs.find_active_key(secret)
    if key is None:
        raise Unauthorized("The VF-ORG-ID key is not valid.")
    org = orgs.get_org(key.org_id)
    if org.status != "active":
        raise Unauthorized("This organisation is suspended.")
    ctx = _org_context(org, "api_key", key.id, "api")
    _cache.put(digest, ctx, api_settings().auth_cache_ttl_s)
    return ctx


def authenticate(headers: Mapping[str, Any] | None) -> OrgContext:
    """The caller's OrgContext from the request headers, or Unauthorized."""
    key = _header(headers, ORG_KEY_HEADER)
    if key:
        return authenticate_key(key.strip())
    authorization = _header(headers, "authorization")
    if authorization and authorization[:7].lower() == "bearer ":
        return authenticate_token(authorization[7:].strip())
    raise Unauthorized("A valid VF-ORG-ID key or bearer token is required.")


# --- dashboard users: passwords and JWTs ---------------------------------------------------------


def _hasher() -> Any:
    from argon2 import PasswordHasher

    return PasswordHasher()  # argon2id with the library's current recommended parameters


def hash_password(password: str) -> str:
    """An argon2id hash of the password."""
    return _hasher().hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """Whether `password` matches `stored_hash` (constant-time inside argon2)."""
    from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

    try:
        return _hasher().verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


# A real hash to verify against when the email is unknown, so both paths cost the same time.
_DUMMY_HASH: list[str] = []


def login(email: str, password: str) -> tuple[str, int, orgs.User]:
    """Check a dashboard user's password; return (jwt, expires_in, user) or Unauthorized."""
    user = orgs.find_user_by_email(email)
    if user is None or user.disabled:
        if not _DUMMY_HASH:
            _DUMMY_HASH.append(hash_password("not-a-real-password"))
        verify_password(_DUMMY_HASH[0], password)
        raise Unauthorized("Email or password is wrong.")
    if not verify_password(user.password_hash, password):
        raise Unauthorized("Email or password is wrong.")
    token, expires_in = issue_token(user)
    return token, expires_in, user


def issue_token(user: orgs.User) -> tuple[str, int]:
    """A short-lived HS256 JWT for a dashboard user, for a new session of theirs (`sid`): signing
    out, a password change or the user's removal ends the session, and the token with it."""
    import jwt

    settings = secret_settings()
    issued = int(time.time())
    session_id = token_urlsafe(16)
    claims = {
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "sub": user.id,
        "org": user.org_id,
        "role": user.role,
        "sid": session_id,
        "iat": issued,
        "nbf": issued,
        "exp": issued + settings.jwt_ttl_s,
    }
    token = jwt.encode(claims, get_secret(settings.jwt_secret_name), algorithm="HS256")
    orgs.start_session(user.id, session_id, datetime.fromtimestamp(claims["exp"], UTC))
    return token, settings.jwt_ttl_s


def authenticate_token(token: str) -> OrgContext:
    """The OrgContext of a valid dashboard JWT, or Unauthorized (expired, tampered, foreign)."""
    import jwt

    settings = secret_settings()
    try:
        claims = jwt.decode(
            token,
            get_secret(settings.jwt_secret_name),
            algorithms=["HS256"],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require": ["exp", "iat", "sub", "org", "sid"]},
        )
    except jwt.PyJWTError as exc:
        raise Unauthorized("The bearer token is not valid.") from exc
    user = orgs.get_user(str(claims["sub"]))
    session_id = str(claims["sid"])
    if user is None or user.disabled or user.org_id != claims["org"] or not user.has_session(session_id):
        raise Unauthorized("The bearer token is not valid.")
    return _org_context(orgs.get_org(user.org_id), "jwt", user.id, user.role, session_id, int(claims["exp"]))
