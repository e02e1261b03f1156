"""Organisations, their API keys and their dashboard users: models and data access.

API keys are random (256 bits), shown once at creation, stored only as a SHA-256 hash (a fast hash
is right for high-entropy secrets: nothing to brute-force), many per org, revocable, and carry a
visible prefix (`vfk_<8 hex>`) so people can tell them apart in listings and logs.
"""

# No `from __future__ import annotations`: pydantic would evaluate each string annotation as it
# creates every model class below, a cost every cold start pays.

import hashlib
import secrets
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from verriflo import db
from verriflo.errors import Conflict, NotFound
from verriflo.settings import api_settings

ORGS, KEYS, USERS = "orgs", "api_keys", "users"
KEY_SCHEME = "vfk_"

Plan = Literal["prepaid", "postpaid"]
# `developer` is what `member` was called before the Console; stored users keep it until changed.
LEGACY_ROLES = {"developer": "member"}


def canonical_role(role: Any) -> Any:
    """A role as the API names it today (`developer` is read as `member`)."""
    return LEGACY_ROLES.get(role, role) if isinstance(role, str) else role


UserRole = Annotated[Literal["owner", "admin", "member", "viewer"], BeforeValidator(canonical_role)]
# How many dashboard sessions (signed-in browsers) one user keeps; a new one pushes out the oldest.
MAX_SESSIONS = 20


def _indexes_keys():
    from pymongo import ASCENDING, IndexModel

    return [IndexModel([("hash", ASCENDING)], unique=True), IndexModel([("orgId", ASCENDING)])]


def _indexes_users():
    from pymongo import ASCENDING, IndexModel

    return [IndexModel([("email", ASCENDING)], unique=True), IndexModel([("orgId", ASCENDING)])]


db.register_indexes(KEYS, _indexes_keys)
db.register_indexes(USERS, _indexes_users)


def now() -> datetime:
    """The current time, timezone-aware UTC (one clock for every module)."""
    return datetime.now(UTC)


def new_id(kind: str) -> str:
    """A readable random identifier such as `org_3f9a...`."""
    return f"{kind}_{secrets.token_hex(12)}"


class RateLimit(BaseModel):
    """A request budget: `limit` requests per `window` seconds."""

    model_config = ConfigDict(defer_build=True)

    limit: int = Field(ge=1, le=1_000_000)
    window: int = Field(default=60, ge=1, le=86_400)


class Org(BaseModel):
    """An organisation: the tenant every document and object belongs to."""

    model_config = ConfigDict(populate_by_name=True, defer_build=True)

    id: str = Field(alias="_id")
    name: str
    plan: Plan = "prepaid"
    billing_cycle: Literal["weekly", "monthly"] | None = Field(default=None, alias="billingCycle")
    status: Literal["active", "suspended"] = "active"
    rate_limits: dict[str, RateLimit] = Field(default_factory=dict, alias="rateLimits")
    created_at: datetime = Field(alias="createdAt")


class ApiKey(BaseModel):
    """An API key as stored (the hash only) and listed (the prefix only)."""

    model_config = ConfigDict(populate_by_name=True, defer_build=True)

    id: str = Field(alias="_id")
    org_id: str = Field(alias="orgId")
    name: str
    prefix: str
    created_at: datetime = Field(alias="createdAt")
    revoked_at: datetime | None = Field(default=None, alias="revokedAt")


class IssuedKey(BaseModel):
    """A newly issued key: the only moment the secret is visible."""

    model_config = ConfigDict(defer_build=True)

    key: ApiKey
    secret: str


class Session(BaseModel):
    """A dashboard session: one sign-in, named by the `sid` claim of its token."""

    model_config = ConfigDict(populate_by_name=True, defer_build=True)

    id: str
    expires_at: datetime = Field(alias="expiresAt")


class User(BaseModel):
    """A dashboard user of one organisation."""

    model_config = ConfigDict(populate_by_name=True, defer_build=True)

    id: str = Field(alias="_id")
    org_id: str = Field(alias="orgId")
    email: str
    name: str = ""
    role: UserRole = "member"
    password_hash: str = Field(alias="passwordHash", repr=False)
    disabled: bool = False
    created_at: datetime = Field(alias="createdAt")
    last_login_at: datetime | None = Field(default=None, alias="lastLoginAt")
    sessions: list[Session] = Field(default_factory=list, repr=False)

    def has_session(self, session_id: str) -> bool:
        """Whether `session_id` is one of the user's live sessions (not signed out or ended)."""
        return any(s.id == session_id for s in self.sessions)


def hash_key(secret: str) -> str:
    """The stored form of an API key."""
    return hashlib.sha256(secret.encode()).hexdigest()


def create_org(name: str, *, plan: Plan = "prepaid", billing_cycle: str | None = None) -> Org:
    """Create an organisation."""
    org = Org(_id=new_id("org"), name=name, plan=plan, billingCycle=billing_cycle, createdAt=now())
    with db.unavailable_on_failure():
        db.collection(ORGS).insert_one(org.model_dump(by_alias=True))
    return org


def get_org(org_id: str) -> Org:
    """The organisation `org_id`, or NotFound."""
    with db.unavailable_on_failure():
        doc = db.collection(ORGS).find_one({"_id": org_id})
    if doc is None:
        raise NotFound("Organisation not found.")
    return Org.model_validate(doc)


def set_rate_limit(org_id: str, group: str, limit: RateLimit | None) -> Org:
    """Set (or, with None, clear) the org's budget for a route group."""
    field = f"rateLimits.{group}"
    update = {"$unset": {field: ""}} if limit is None else {"$set": {field: limit.model_dump()}}
    with db.unavailable_on_failure():
        result = db.collection(ORGS).update_one({"_id": org_id}, update)
    if result.matched_count == 0:
        raise NotFound("Organisation not found.")
    return get_org(org_id)


def issue_key(org_id: str, name: str = "default") -> IssuedKey:
    """Issue a new API key for the org; the secret is returned once and never stored."""
    get_org(org_id)
    prefix = KEY_SCHEME + secrets.token_hex(4)
    secret = f"{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(_id=new_id("key"), orgId=org_id, name=name, prefix=prefix, createdAt=now())
    doc = key.model_dump(by_alias=True) | {"hash": hash_key(secret)}
    with db.unavailable_on_failure():
        db.collection(KEYS).insert_one(doc)
    return IssuedKey(key=key, secret=secret)


def list_keys(org_id: str) -> list[ApiKey]:
    """The org's keys, newest first (never their secrets)."""
    with db.unavailable_on_failure():
        docs = db.collection(KEYS).find({"orgId": org_id}, {"hash": 0}).sort("createdAt", -1)
        return [ApiKey.model_validate(d) for d in docs]


def revoke_key(org_id: str, key_id: str) -> ApiKey:
    """Revoke one of the org's keys (idempotent); another org's key id is NotFound.

    The revocation is first announced in Redis, for longer than any process may cache a key
    (`auth_cache_ttl_s`, twice, plus a minute), so every process that still caches the key sees it
    on its next request (`revocation_announced`). The announcement comes before the database write:
    if Redis is down nothing is revoked (503), and an announcement whose database write then failed
    only costs the key's holders one database read.
    """
    with db.unavailable_on_failure():
        if db.collection(KEYS).count_documents({"_id": key_id, "orgId": org_id}, limit=1) == 0:
            raise NotFound("API key not found.")
    _announce_revocation(key_id, 2 * api_settings().auth_cache_ttl_s + 60)
    with db.unavailable_on_failure():
        db.collection(KEYS).update_one(
            {"_id": key_id, "orgId": org_id, "revokedAt": None}, {"$set": {"revokedAt": now()}}
        )
        doc = db.collection(KEYS).find_one({"_id": key_id, "orgId": org_id}, {"hash": 0})
    if doc is None:
        raise NotFound("API key not found.")
    return ApiKey.model_validate(doc)


def _revocation_marker(key_id: str) -> str:
    return f"revoked-key:{key_id}"


def _announce_revocation(key_id: str, seconds: float) -> None:
    from verriflo.cache import redis_client, unavailable_on_failure

    with unavailable_on_failure():
        redis_client().set(_revocation_marker(key_id), "1", px=max(int(seconds * 1000), 1))


def revocation_announced(key_id: str) -> bool | None:
    """Whether a revocation of `key_id` was announced recently; None when Redis cannot say."""
    from redis.exceptions import RedisError

    from verriflo.cache import redis_client

    try:
        return bool(redis_client().exists(_revocation_marker(key_id)))
    except RedisError:
        return None


def find_active_key(secret: str) -> ApiKey | None:
    """The live key whose hash matches `secret`, if any."""
    with db.unavailable_on_failure():
        doc = db.collection(KEYS).find_one({"hash": hash_key(secret), "revokedAt": None}, {"hash": 0})
    return ApiKey.model_validate(doc) if doc else None


def create_user(org_id: str, email: str, password_hash: str, role: str = "member", name: str = "") -> User:
    """Create a dashboard user; the email is unique across all orgs."""
    from pymongo.errors import DuplicateKeyError

    get_org(org_id)
    user = User(
        _id=new_id("usr"),
        orgId=org_id,
        email=email.lower(),
        name=name,
        role=role,
        passwordHash=password_hash,
        createdAt=now(),
    )
    try:
        with db.unavailable_on_failure():
            db.collection(USERS).insert_one(user.model_dump(by_alias=True))
    except DuplicateKeyError as exc:
        raise Conflict("A user with this email already exists.") from exc
    return user


def find_user_by_email(email: str) -> User | None:
    """The user with this email, if any."""
    with db.unavailable_on_failure():
        doc = db.collection(USERS).find_one({"email": email.lower()})
    return User.model_validate(doc) if doc else None


def get_user(user_id: str) -> User | None:
    """The user `user_id`, if any."""
    with db.unavailable_on_failure():
        doc = db.collection(USERS).find_one({"_id": user_id})
    return User.model_validate(doc) if doc else None


def list_users(org_id: str) -> list[User]:
    """The org's dashboard users, oldest first."""
    with db.unavailable_on_failure():
        docs = db.collection(USERS).find({"orgId": org_id}).sort([("createdAt", 1), ("_id", 1)])
        return [User.model_validate(d) for d in docs]


def get_org_user(org_id: str, user_id: str, session: Any = None) -> User:
    """One of the org's users; NotFound for unknown ids and other orgs' users alike."""
    with db.unavailable_on_failure():
        doc = db.collection(USERS).find_one({"_id": user_id, "orgId": org_id}, session=session)
    if doc is None:
        raise NotFound("No such user.")
    return User.model_validate(doc)


def start_session(user_id: str, session_id: str, expires_at: datetime) -> None:
    """Record a sign-in: the session joins the user's live ones (the oldest beyond MAX_SESSIONS and
    the expired ones are dropped), and the time is the user's last sign-in."""
    users = db.collection(USERS)
    with db.unavailable_on_failure():
        users.update_one({"_id": user_id}, {"$pull": {"sessions": {"expiresAt": {"$lte": now()}}}})
        users.update_one(
            {"_id": user_id},
            {
                "$push": {
                    "sessions": {
                        "$each": [{"id": session_id, "expiresAt": expires_at}],
                        "$slice": -MAX_SESSIONS,
                    }
                },
                "$set": {"lastLoginAt": now()},
            },
        )


def end_session(user_id: str, session_id: str) -> None:
    """Sign one session out: its token is refused from now on."""
    with db.unavailable_on_failure():
        db.collection(USERS).update_one({"_id": user_id}, {"$pull": {"sessions": {"id": session_id}}})


def set_password(org_id: str, user_id: str, password_hash: str, keep_session: str | None) -> None:
    """A new password; every session of the user but `keep_session` (the one that changed it) ends."""
    with db.unavailable_on_failure():
        found = db.collection(USERS).find_one_and_update(
            {"_id": user_id, "orgId": org_id},
            {"$set": {"passwordHash": password_hash}, "$pull": {"sessions": {"id": {"$ne": keep_session}}}},
        )
    if found is None:
        raise NotFound("No such user.")


def _owners_left(org_id: str, session: Any, without: str) -> int:
    return db.collection(USERS).count_documents(
        {"orgId": org_id, "role": "owner", "_id": {"$ne": without}}, session=session
    )


def _guard_team_change(org_id: str, target: User, session: Any) -> None:
    # Every team change writes the org's document too: two changes at once (two owners demoting each
    # other) then conflict and one is retried, instead of both passing the owner count (write skew).
    db.collection(ORGS).update_one({"_id": org_id}, {"$inc": {"teamVersion": 1}}, session=session)
    if target.role == "owner" and _owners_left(org_id, session, target.id) == 0:
        raise Conflict("The organisation's last owner cannot be demoted or removed.")


def change_role(org_id: str, user_id: str, role: str) -> User:
    """Give one of the org's users another role; Conflict if that would leave the org without an owner."""
    role = canonical_role(role)

    def work(session: Any) -> User:
        target = get_org_user(org_id, user_id, session)
        if role != "owner":
            _guard_team_change(org_id, target, session)
        found = db.collection(USERS).find_one_and_update(
            {"_id": user_id, "orgId": org_id},
            {"$set": {"role": role}},
            session=session,
            return_document=True,
        )
        if found is None:
            raise NotFound("No such user.")
        return User.model_validate(found)

    return db.in_transaction(work)


def delete_user(org_id: str, user_id: str) -> User:
    """Remove one of the org's users (their sessions end with them); Conflict for the last owner."""

    def work(session: Any) -> User:
        target = get_org_user(org_id, user_id, session)
        _guard_team_change(org_id, target, session)
        if (
            db.collection(USERS).delete_one({"_id": user_id, "orgId": org_id}, session=session).deleted_count
            == 0
        ):
            raise NotFound("No such user.")
        return target

    return db.in_transaction(work)
