"""Who may call what: the one table of routes to actions, of roles to actions, and the one check.

Every route of the API is listed here with the action it performs; `admit()` is the only place that
decides, before the request body is even parsed: public routes need nothing, internal routes need
`X-Dispatch-Secret`, every other route needs an authenticated caller whose role allows the action.
Both HTTP fronts call it (`verriflo.api` for the Powertools routes, `verriflo.asgi` for the streamed
ones). A route missing from the table is refused (403) whoever calls it, and a unit test checks that
the table and the OpenAPI document list the same operations, so a new route cannot slip through.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from verriflo.auth import OrgContext, authenticate
from verriflo.errors import Forbidden
from verriflo.internal import check_dispatch_secret


class Action(StrEnum):
    """What a route does, as far as permissions go."""

    PUBLIC = "public"  # no org credential (health, login, players, LiveKit, the classroom page's token)
    INTERNAL = "internal"  # service to service, X-Dispatch-Secret only
    READ = "read"  # read the org's data (nothing secret)
    USE = "use"  # use the product: create, change, delete, spend credits
    MANAGE = "manage"  # the org's settings: spending limits, the tutor's defaults, webhook endpoints
    KEYS = "keys"  # list, issue and revoke API keys
    TEAM = "team"  # add, change and remove the org's dashboard users
    ACCOUNT = "account"  # a dashboard user's own session and password


# `api` is an org API key: the org's integration, with every product right and the org's settings,
# but it cannot manage keys or users (a leaked key must not be able to mint more keys, nor a user who
# could). Owner and admin have the same actions; what only an owner may do (grant or take the owner
# role) is decided by the team logic. `member` was called `developer` before; `orgs.canonical_role`
# reads the old name as the new one.
ROLE_ACTIONS: dict[str, frozenset[Action]] = {
    "owner": frozenset({Action.READ, Action.USE, Action.MANAGE, Action.KEYS, Action.TEAM, Action.ACCOUNT}),
    "admin": frozenset({Action.READ, Action.USE, Action.MANAGE, Action.KEYS, Action.TEAM, Action.ACCOUNT}),
    "member": frozenset({Action.READ, Action.USE, Action.ACCOUNT}),
    "viewer": frozenset({Action.READ, Action.ACCOUNT}),
    "api": frozenset({Action.READ, Action.USE, Action.MANAGE}),
}

_PUBLIC, _INTERNAL, _READ, _USE, _MANAGE, _KEYS, _TEAM, _ACCOUNT = (
    Action.PUBLIC,
    Action.INTERNAL,
    Action.READ,
    Action.USE,
    Action.MANAGE,
    Action.KEYS,
    Action.TEAM,
    Action.ACCOUNT,
)
_KB = "/v1/ai-agent/knowledge-bases/{kb_id}"
_TUTOR_ROOM = "/v1/ai-tutor/rooms/{room_id}"
_ROOM = "/v1/room/{room_id}"
_VIDEO = "/v1/cdn/videos/{video_id}"
_HOOK = "/v1/webhooks/{endpoint_id}"

# (method, OpenAPI path) -> action, for every route of every function.
ROUTES: dict[tuple[str, str], Action] = {
    # health, docs, identity
    ("GET", "/v1/health"): _PUBLIC,
    ("GET", "/v1/health/ready"): _PUBLIC,
    ("GET", "/v1/openapi.json"): _PUBLIC,
    ("POST", "/v1/auth/login"): _PUBLIC,
    ("GET", "/v1/auth/whoami"): _READ,
    ("POST", "/v1/auth/logout"): _ACCOUNT,
    ("POST", "/v1/auth/password"): _ACCOUNT,
    ("GET", "/v1/keys"): _KEYS,
    ("POST", "/v1/keys"): _KEYS,
    ("DELETE", "/v1/keys/{key_id}"): _KEYS,
    ("GET", "/v1/team/users"): _READ,
    ("POST", "/v1/team/users"): _TEAM,
    ("PATCH", "/v1/team/users/{user_id}"): _TEAM,
    ("DELETE", "/v1/team/users/{user_id}"): _TEAM,
    # rooms
    ("POST", "/v1/room/create"): _USE,
    ("GET", "/v1/rooms"): _READ,
    ("POST", f"{_ROOM}/join"): _USE,
    ("GET", f"{_ROOM}/status"): _READ,
    ("DELETE", _ROOM): _USE,
    ("GET", f"{_ROOM}/summary"): _READ,
    ("POST", f"{_ROOM}/recording/start"): _USE,
    ("POST", f"{_ROOM}/recording/stop"): _USE,
    ("GET", f"{_ROOM}/recording/list"): _READ,
    ("GET", f"{_ROOM}/recording/{{egress_id}}/download"): _READ,
    ("GET", f"{_ROOM}/participants"): _READ,
    ("DELETE", f"{_ROOM}/participants/{{uid}}"): _USE,
    ("PATCH", f"{_ROOM}/participants/{{uid}}"): _USE,
    ("POST", f"{_ROOM}/participants/{{uid}}/mute"): _USE,
    ("POST", "/v1/livekit/webhook"): _PUBLIC,  # LiveKit's signature
    # AI API
    ("POST", "/v1/ai-agent/chat"): _USE,
    ("POST", "/v1/ai-agent/chat/stream"): _USE,
    ("GET", "/v1/ai-agent/chats"): _READ,
    ("GET", "/v1/ai-agent/chats/{chat_id}"): _READ,
    ("DELETE", "/v1/ai-agent/chats/{chat_id}"): _USE,
    ("GET", "/v1/ai-agent/usage/summary"): _READ,
    ("GET", "/v1/ai-agent/knowledge-bases"): _READ,
    ("POST", "/v1/ai-agent/knowledge-bases"): _USE,
    ("GET", _KB): _READ,
    ("DELETE", _KB): _USE,
    ("GET", f"{_KB}/documents"): _READ,
    ("POST", f"{_KB}/documents"): _USE,
    ("GET", f"{_KB}/documents/{{document_id}}"): _READ,
    ("DELETE", f"{_KB}/documents/{{document_id}}"): _USE,
    ("POST", "/api/v1/generate"): _INTERNAL,
    ("POST", "/api/v1/generate/stream"): _INTERNAL,
    # AI tutor
    ("POST", "/v1/ai-tutor/chat"): _USE,
    ("POST", "/v1/ai-tutor/chat/stream"): _USE,
    ("GET", "/v1/ai-tutor/summary/{room_id}"): _READ,
    ("GET", "/v1/ai-tutor/usage/{room_id}"): _READ,
    ("GET", f"{_TUTOR_ROOM}/interactions"): _READ,
    ("GET", f"{_TUTOR_ROOM}/material"): _READ,
    ("POST", f"{_TUTOR_ROOM}/material"): _USE,
    ("GET", f"{_TUTOR_ROOM}/material/{{material_id}}"): _READ,
    ("DELETE", f"{_TUTOR_ROOM}/material/{{material_id}}"): _USE,
    ("GET", "/v1/ai-tutor/settings"): _READ,
    ("PUT", "/v1/ai-tutor/settings"): _MANAGE,
    ("GET", f"{_TUTOR_ROOM}/settings"): _READ,
    ("PUT", f"{_TUTOR_ROOM}/settings"): _USE,
    ("POST", "/api/ai-tutor/summarize"): _INTERNAL,
    # the classroom page: the participant's join token, checked by the tutor itself
    ("POST", "/v1/ai-tutor/classroom/chat/stream"): _PUBLIC,
    ("GET", "/v1/ai-tutor/classroom/state"): _PUBLIC,
    ("PUT", "/v1/ai-tutor/classroom/settings"): _PUBLIC,
    ("OPTIONS", "/v1/ai-tutor/classroom/chat/stream"): _PUBLIC,  # CORS preflights
    ("OPTIONS", "/v1/ai-tutor/classroom/state"): _PUBLIC,
    ("OPTIONS", "/v1/ai-tutor/classroom/settings"): _PUBLIC,
    # videos
    ("POST", "/v1/cdn/videos"): _USE,
    ("GET", "/v1/cdn/videos"): _READ,
    ("GET", _VIDEO): _READ,
    ("DELETE", _VIDEO): _USE,
    ("POST", f"{_VIDEO}/upload/complete"): _USE,
    ("GET", f"{_VIDEO}/status"): _READ,
    ("GET", f"{_VIDEO}/url"): _READ,
    ("GET", "/v1/cdn/stream/{video_id}/master.m3u8"): _PUBLIC,  # the playback token
    ("GET", "/v1/cdn/stream/{video_id}/{rendition}/index.m3u8"): _PUBLIC,
    # credits
    ("GET", "/v1/billing/balance"): _READ,
    ("GET", "/v1/billing/usage"): _READ,
    ("GET", "/v1/billing/ledger"): _READ,
    ("GET", "/v1/billing/limits"): _READ,
    ("PUT", "/v1/billing/limits"): _MANAGE,
    # webhooks: the endpoints are the org's settings (a secret is shown only by create and rotate);
    # testing and replaying deliveries is using them
    ("POST", "/v1/webhooks"): _MANAGE,
    ("GET", "/v1/webhooks"): _READ,
    ("GET", "/v1/webhooks/event-types"): _READ,
    ("GET", _HOOK): _READ,
    ("PATCH", _HOOK): _MANAGE,
    ("DELETE", _HOOK): _MANAGE,
    ("POST", f"{_HOOK}/rotate-secret"): _MANAGE,
    ("POST", f"{_HOOK}/test"): _USE,
    ("GET", f"{_HOOK}/deliveries"): _READ,
    ("GET", f"{_HOOK}/deliveries/{{delivery_id}}"): _READ,
    ("POST", f"{_HOOK}/deliveries/{{delivery_id}}/replay"): _USE,
    ("POST", f"{_HOOK}/replay"): _USE,
}


def action(method: str, path: str) -> Action | None:
    """The action of a route (`path` as in the OpenAPI document), or None for a route not listed."""
    return ROUTES.get((method.upper(), path))


def allows(role: str, act: Action) -> bool:
    """Whether `role` may perform `act` (an unknown role may do nothing)."""
    return act in ROLE_ACTIONS.get(role, frozenset())


def admit(
    method: str, path: str, headers: Mapping[str, Any] | None, authorizer: Mapping[str, Any] | None
) -> OrgContext | None:
    """Let a request in or raise: the caller's OrgContext for org routes, None for public and internal
    routes. `authorizer` is the API Gateway authorizer's context when the platform ran one."""
    act = action(method, path)
    if act is None:
        raise Forbidden("This route has no access rule.")
    if act is Action.PUBLIC:
        return None
    if act is Action.INTERNAL:
        check_dispatch_secret(headers)
        return None
    org = (
        OrgContext.from_authorizer_context(authorizer)
        if authorizer and authorizer.get("orgId")
        else authenticate(headers)
    )
    if not allows(org.role, act):
        raise Forbidden(f"The {_name(org.role)} cannot {_VERBS[act]}; that needs {_holders(act)}.")
    return org


_VERBS = {
    Action.READ: "read this organisation's data",
    Action.USE: "change anything or spend credits",
    Action.MANAGE: "change the organisation's settings",
    Action.KEYS: "manage API keys",
    Action.TEAM: "manage the organisation's users",
    Action.ACCOUNT: "manage a dashboard session",
}


def _name(role: str) -> str:
    return "API key" if role == "api" else f"{role or 'unknown'} role"


def _holders(act: Action) -> str:
    roles = [role for role, acts in ROLE_ACTIONS.items() if act in acts and role != "api"]
    named = f"the {', '.join(roles[:-1])} or {roles[-1]} role" if len(roles) > 1 else f"the {roles[0]} role"
    return f"{named}, or an API key" if allows("api", act) else named
