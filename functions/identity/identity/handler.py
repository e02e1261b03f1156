"""Dashboard sign-in, sessions, the team's users and API key management."""

# No `from __future__ import annotations` here: Powertools resolves each route's dependencies with
# typing.get_type_hints on every request, and string annotations are re-compiled each time.
from verriflo.api import PUBLIC, Envelope, Org, create_app, lambda_handler, ok, protected, responses

from identity import logic, models, team

app = create_app()
account = protected(app, "identity")


def _source_ip() -> str:
    return app.current_event.request_context.identity.source_ip or "unknown"


@app.post(
    "/v1/auth/login",
    summary="Log in a dashboard user",
    tags=["identity"],
    responses=responses(models.LoginResult, 400, 401, 429, 503),
    openapi_extensions=PUBLIC,
)
def login(body: models.LoginRequest) -> Envelope[models.LoginResult]:
    """Email and password in, a short-lived bearer token out."""
    return ok(logic.login(body, _source_ip()))


@account.get(
    "/v1/auth/whoami",
    summary="The caller's organisation",
    tags=["identity"],
    responses=responses(models.WhoAmI, 401, 429, 503),
)
def whoami(org: Org) -> Envelope[models.WhoAmI]:
    """Which org and credential this request authenticated as; for a dashboard token also the user
    (`userId`, `email`, `name`) and when the token expires (`expiresAt`)."""
    return ok(logic.whoami(org))


@account.post(
    "/v1/auth/logout",
    summary="End this dashboard session",
    tags=["identity"],
    responses=responses(models.LoggedOut, 401, 403, 429, 503),
)
def logout(org: Org, body: models.LogoutRequest | None = None) -> Envelope[models.LoggedOut]:
    """The bearer token presented is refused from now on (the user's other sessions go on). No body,
    or `{}`."""
    return ok(logic.logout(org))


@account.post(
    "/v1/auth/password",
    summary="Change your own password",
    tags=["identity"],
    responses=responses(models.PasswordChanged, 400, 401, 403, 429, 503),
)
def change_password(body: models.PasswordChange, org: Org) -> Envelope[models.PasswordChanged]:
    """Needs the current password (403 when wrong; throttled like sign-in); every other session of
    the user ends, this one goes on."""
    return ok(logic.change_password(org, body, _source_ip()))


@account.get(
    "/v1/team/users",
    summary="The organisation's dashboard users",
    tags=["team"],
    responses=responses(models.TeamUserList, 401, 429, 503),
)
def list_team(org: Org) -> Envelope[models.TeamUserList]:
    """Every user with role, creation and last sign-in."""
    return ok(team.list_users(org))


@account.post(
    "/v1/team/users",
    summary="Add a dashboard user",
    tags=["team"],
    responses=responses(models.TeamUserOne, 400, 401, 403, 409, 429, 503, status=201),
)
def add_team_user(body: models.NewTeamUser, org: Org) -> Envelope[models.TeamUserOne]:
    """With a first password of at least 12 characters; only an owner may add an owner; 409 when the
    email is already a user's."""
    return ok(team.create_user(org, body), status=201)


@account.patch(
    "/v1/team/users/<user_id>",
    summary="Change a user's role",
    tags=["team"],
    responses=responses(models.TeamUserOne, 400, 401, 403, 404, 409, 429, 503),
)
def change_team_role(user_id: str, body: models.TeamRoleChange, org: Org) -> Envelope[models.TeamUserOne]:
    """Only an owner grants or takes the owner role; nobody changes their own role; the last owner
    stays one (409)."""
    return ok(team.change_role(org, user_id, body))


@account.delete(
    "/v1/team/users/<user_id>",
    summary="Remove a user",
    tags=["team"],
    responses=responses(models.TeamUserDeleted, 401, 403, 404, 409, 429, 503),
)
def remove_team_user(user_id: str, org: Org) -> Envelope[models.TeamUserDeleted]:
    """Their sessions end at once; nobody removes themselves; only an owner removes an owner; the
    last owner stays (409)."""
    return ok(team.remove_user(org, user_id))


@account.get(
    "/v1/keys",
    summary="List the organisation's API keys",
    tags=["identity"],
    responses=responses(models.KeyList, 401, 403, 429, 503),
)
def list_keys(org: Org) -> Envelope[models.KeyList]:
    """Prefixes and dates only; secrets are never shown again."""
    return ok(logic.list_keys(org))


@account.post(
    "/v1/keys",
    summary="Issue an API key",
    tags=["identity"],
    responses=responses(models.NewKey, 400, 401, 403, 429, 503, status=201),
)
def issue_key(body: models.NewKeyRequest, org: Org) -> Envelope[models.NewKey]:
    """A new key; its secret is in this response and nowhere else, ever."""
    return ok(logic.issue_key(org, body), status=201)


@account.delete(
    "/v1/keys/<key_id>",
    summary="Revoke an API key",
    tags=["identity"],
    responses=responses(models.KeyInfo, 401, 403, 404, 429, 503),
)
def revoke_key(key_id: str, org: Org) -> Envelope[models.KeyInfo]:
    """Revoke one of the org's keys; another org's key id is 404."""
    return ok(logic.revoke_key(org, key_id))


handler = lambda_handler(app)
