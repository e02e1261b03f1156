"""Dashboard sign-in and API key management: who am I, log in, list/issue/revoke keys."""

# No `from __future__ import annotations` here: Powertools resolves each route's dependencies with
# typing.get_type_hints on every request, and string annotations are re-compiled each time.
from verriflo.api import PUBLIC, Envelope, Org, create_app, lambda_handler, ok, protected, responses

from identity import logic, models

app = create_app()
account = protected(app, "identity")


@app.post(
    "/v1/auth/login",
    summary="Log in a dashboard user",
    tags=["identity"],
    responses=responses(models.LoginResult, 400, 401, 429, 503),
    openapi_extensions=PUBLIC,
)
def login(body: models.LoginRequest) -> Envelope[models.LoginResult]:
    """Email and password in, a short-lived bearer token out."""
    source_ip = app.current_event.request_context.identity.source_ip or "unknown"
    return ok(logic.login(body, source_ip))


@account.get(
    "/v1/auth/whoami",
    summary="The caller's organisation",
    tags=["identity"],
    responses=responses(models.WhoAmI, 401, 429, 503),
)
def whoami(org: Org) -> Envelope[models.WhoAmI]:
    """Which org and credential this request authenticated as."""
    return ok(logic.whoami(org))


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
