"""The HTTP layer every function shares: a Powertools REST resolver with our envelope, errors,
request ids, body limits, authentication and rate limits, plus the Lambda handler wrapper.

Routes declare `org: Org` to receive the caller's OrgContext (admitted by `verriflo.access`: who
may call which route), and protected routers add `rate_limited(group)`; everything else (error
mapping, 404/405, 413, validation messages) happens here once, so each function only wires routes
to logic.
"""

# No `from __future__ import annotations` here: Powertools resolves the annotations of middlewares
# and dependencies on every request, and string annotations would be re-evaluated each time.
import base64
import binascii
import uuid
from collections.abc import Callable
from contextvars import ContextVar
from typing import Annotated, Any, Generic, Literal, TypeVar

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.depends import Depends
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
from aws_lambda_powertools.event_handler.middlewares.openapi_validation import (
    OpenAPIRequestValidationMiddleware,
)
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.request import Request
from pydantic import BaseModel, ConfigDict
from pydantic_core import from_json

from verriflo import access, cors, ratelimit
from verriflo.auth import OrgContext
from verriflo.errors import (
    ERROR_CLASSES,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
    VerrifloError,
)
from verriflo.observability import logger, metrics, tracer, tracing_enabled
from verriflo.settings import api_settings

T = TypeVar("T")
JSON = "application/json"
# Marks a route that needs no credentials (OpenAPI `openapi_extensions`); the merged document turns
# it into `security: []` for that operation.
PUBLIC = {"x-verriflo-public": True}
# The rate-limit headers of the request being answered, once it was counted: every answer after
# that carries them, errors raised by the route included (see `lambda_handler`).
_COUNTED: ContextVar[dict[str, str]] = ContextVar("verriflo_counted", default={})  # noqa: B039 - never mutated


class Envelope(BaseModel, Generic[T]):  # noqa: UP046 - keeps the OpenAPI schema names stable
    """The success envelope of API.md."""

    model_config = ConfigDict(defer_build=True)  # built on first use, not at import

    success: Literal[True] = True
    data: T


class ErrorEnvelope(BaseModel):
    """The error envelope of API.md."""

    model_config = ConfigDict(defer_build=True)

    success: Literal[False] = False
    message: str
    error: str


def ok(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A success response wrapping `data` (a pydantic model or plain JSON data) in the envelope."""
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json", by_alias=True)
    return Response(
        status_code=status, content_type=JSON, body={"success": True, "data": data}, headers=headers
    )


def error_response(exc: VerrifloError) -> Response:
    """The envelope response for a domain error."""
    return Response(status_code=exc.status, content_type=JSON, body=exc.envelope(), headers=exc.headers)


def responses(
    model: Any = None, *statuses: int, status: int = 200, description: str = "Success"
) -> dict[int, dict[str, Any]]:
    """OpenAPI `responses` for a route: the success envelope around `model`, then its error statuses."""
    described = {cls.status: cls.default_message for cls in reversed(ERROR_CLASSES)}
    result: dict[int, dict[str, Any]] = {}
    if model is not None:
        result[status] = {"description": description, "content": {JSON: {"model": Envelope[model]}}}
    for code in statuses:
        result[code] = {
            "description": described.get(code, "Error"),
            "content": {JSON: {"model": ErrorEnvelope}},
        }
    return result


# --- authentication and limits --------------------------------------------------------------------


_ORG = "verriflo_org"  # where admission leaves the caller in the resolver's per-request context


def current_org(request: Request) -> OrgContext:
    """The caller's org, as admitted for this route (`_admit_first`)."""
    org = request.context.get(_ORG)
    if org is None:  # the access table marks this route public or internal: it has no org caller
        raise Unauthorized()
    return org


def _admit_first(validate: Callable[..., Response]) -> Callable[..., Response]:
    """Run `access.admit` (credentials and role, from the access table) before Powertools' request
    validation, the first middleware of every route: a caller who may not call a route learns
    nothing about its input. (`_static_routes`/`_dynamic_routes` as in `_not_found`: the version is
    pinned; the route Powertools makes up for an unknown path is left to the 404/405 answer.)"""

    def admitted(app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response:
        route = app.context.get("_route")
        if route is not None and any(route is r for r in app._static_routes + app._dynamic_routes):  # noqa: SLF001
            event = app.current_event.raw_event
            authorizer = (event.get("requestContext") or {}).get("authorizer")
            org = access.admit(route.method, route.openapi_path, event.get("headers"), authorizer)
            if org is not None:
                logger.append_keys(org_id=org.org_id)
                app.append_context(**{_ORG: org})
        return validate(app, next_middleware)

    return admitted


Org = Annotated[OrgContext, Depends(current_org)]


def rate_limited(group: str) -> Callable[..., Response]:
    """A middleware that counts the admitted caller's request against its budget."""

    def middleware(app: APIGatewayRestResolver, next_middleware: NextMiddleware, org: Org) -> Response:
        _COUNTED.set(ratelimit.enforce(org, group).headers())
        return next_middleware(app)

    middleware.__name__ = f"rate_limited_{group}"
    return middleware


class Routes:
    """Routes registered with the same middlewares.

    Powertools' `Router.use()` middlewares become app-wide on `include_router`, which would put
    public routes (login, health) behind auth; this registers per route instead.
    """

    def __init__(self, app: APIGatewayRestResolver, *middlewares: Callable[..., Response]) -> None:
        self._app = app
        self._middlewares = list(middlewares)

    def _route(
        self, method: str, path: str, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        kwargs["middlewares"] = self._middlewares + list(kwargs.get("middlewares") or [])
        return getattr(self._app, method)(path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return self._route("get", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return self._route("post", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return self._route("put", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return self._route("patch", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return self._route("delete", path, **kwargs)


def protected(app: APIGatewayRestResolver, group: str) -> Routes:
    """Org routes (who may call each: `verriflo.access`), counted against the org's `group` budget."""
    return Routes(app, rate_limited(group))


def internal(app: APIGatewayRestResolver) -> Routes:
    """Service-to-service routes: the access table marks them internal (X-Dispatch-Secret only)."""
    return Routes(app)


# --- the app --------------------------------------------------------------------------------------


def json_media_type(content_type: str | None) -> bool:
    """Whether a Content-Type names JSON (`application/json`, any `+json`); no header counts as JSON."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return not media or media == JSON or (media.startswith("application/") and media.endswith("+json"))


def check_json_media_type(content_type: str | None) -> None:
    """UnsupportedMediaType (415) unless the body is declared as JSON (or not declared at all)."""
    if not json_media_type(content_type):
        raise UnsupportedMediaType(f"The request body must be {JSON}, not {content_type}.")


def body_text(event: dict[str, Any]) -> str:
    """The request body as text; ValidationFailed (400) when it is not UTF-8 (or not base64 when
    the platform says it is), instead of the UnicodeDecodeError Powertools' `decoded_body` raises."""
    body = event.get("body") or ""
    try:
        raw = base64.b64decode(body, validate=True) if event.get("isBase64Encoded") else body.encode()
        return raw.decode()
    except (binascii.Error, UnicodeError) as exc:
        raise ValidationFailed(
            "The request body is not valid UTF-8.",
            details={"fields": [{"field": "body", "message": "not valid UTF-8", "type": "utf8_invalid"}]},
        ) from exc


def parse_json_text(text: str | bytes) -> Any:
    """Parse a JSON body: ValidationFailed (400) for anything that is not JSON, including lone UTF-16
    surrogates (`"\\ud800"`, which no store can encode) and nesting deeper than 200 levels."""
    try:
        return from_json(text, allow_inf_nan=False)
    except ValueError as exc:
        raise ValidationFailed(
            "The request body is not valid JSON.",
            details={"fields": [{"field": "body", "message": str(exc), "type": "json_invalid"}]},
        ) from exc


class _BodyParser(OpenAPIRequestValidationMiddleware):
    """Powertools' request validation with our body rules: JSON only (415 for any other declared
    type, where Powertools would parse forms and fail with a 500 on the rest), UTF-8 only, and
    parsed by `parse_json_text`."""

    def __init__(self, parse: Callable[[str], Any]) -> None:
        super().__init__()
        self._parse = parse

    def _get_body(self, app: APIGatewayRestResolver) -> Any:  # Powertools' hook, pinned version
        event = app.current_event
        check_json_media_type(event.headers.get("content-type"))
        if not event.raw_event.get("body"):
            return None
        return self._parse(body_text(event.raw_event))


def _body_size(event: dict[str, Any]) -> int:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return len(body) * 3 // 4
    return len(body.encode()) if isinstance(body, str) else len(body)


def _field_message(errors_: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    details = []
    for err in errors_:
        loc = [str(p) for p in err.get("loc", ()) if p not in ("body",)] or ["body"]
        details.append(
            {"field": ".".join(loc), "message": err.get("msg", "invalid"), "type": err.get("type")}
        )
    first = details[0] if details else {"field": "body", "message": "invalid", "type": None}
    if first.get("type") == "json_invalid":
        return "The request body is not valid JSON.", [
            {"field": "body", "message": "not valid JSON", "type": "json_invalid"}
        ]
    return f"Invalid value for '{first['field']}': {first['message']}", details


def create_app(*, max_body_bytes: int | None = None, cors: bool = False) -> APIGatewayRestResolver:
    """A resolver with the shared middleware and the one mapping from errors to the envelope."""

    def body_limit() -> int:
        return max_body_bytes or api_settings().max_body_bytes

    def too_large() -> PayloadTooLarge:
        return PayloadTooLarge(f"The request body is larger than {body_limit()} bytes.")

    def parse_json(text: str) -> Any:
        # Request validation parses the body before any middleware runs, so the limit lives here too.
        if len(text) > body_limit():
            raise too_large()
        return parse_json_text(text)

    app = APIGatewayRestResolver(
        json_body_deserializer=parse_json,
        enable_validation=True,
        response_validation_error_http_code=500,
        cors=CORSConfig(
            allow_origin="*", allow_headers=["Authorization", "Content-Type", "X-Request-Id"], max_age=600
        )
        if cors
        else None,
    )
    app._request_validation_middleware = _BodyParser(parse_json)  # noqa: SLF001 - see _BodyParser

    def size_limit(app_: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response:
        if _body_size(app_.current_event.raw_event) > body_limit():
            return error_response(too_large())
        return next_middleware(app_)

    app.use(middlewares=[size_limit])
    app._request_validation_middleware = _admit_first(app._request_validation_middleware)  # noqa: SLF001

    @app.exception_handler(VerrifloError)
    def _domain_error(exc: VerrifloError) -> Response:
        if exc.status >= 500:
            logger.warning("request.failed", extra={"error": exc.code, "cause": type(exc.__cause__).__name__})
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    def _invalid(exc: RequestValidationError) -> Response:
        message, details = _field_message(list(exc.errors()))
        return error_response(ValidationFailed(message, details={"fields": details}))

    @app.not_found
    def _not_found(_exc: Exception) -> Response:
        event = app.current_event
        # Powertools answers 404 for a known path with another method; tell the caller it is 405.
        # (_static_routes/_dynamic_routes are Powertools' route tables; the version is pinned.)
        routes = app._static_routes + app._dynamic_routes  # noqa: SLF001
        allowed = sorted({r.method for r in routes if r.rule.match(event.path)})
        if allowed:
            return error_response(MethodNotAllowed(headers={"Allow": ", ".join(allowed)}))
        return error_response(NotFound(f"No route for {event.http_method} {event.path}."))

    @app.exception_handler(Exception)
    def _unexpected(exc: Exception) -> Response:
        logger.exception("request.crashed", extra={"error_type": type(exc).__name__})
        return error_response(VerrifloError())

    return app


def lambda_handler(app: APIGatewayRestResolver) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda entry point for an app: logging context, tracing, metrics, then the router."""

    def resolve(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return app.resolve(event, context)

    if tracing_enabled():
        resolve = tracer().capture_lambda_handler(capture_response=False)(resolve)

    @logger.inject_lambda_context(clear_state=True)
    @metrics.log_metrics
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        # Every response, errors included, carries the request id that its log lines carry.
        request_id = (event.get("requestContext") or {}).get("requestId") or uuid.uuid4().hex
        logger.append_keys(request_id=request_id)
        counted = _COUNTED.set({})
        try:
            result = resolve(event, context)
            headers = result.setdefault("headers", {})
            for name, value in _COUNTED.get().items():
                headers.setdefault(name, value)  # also on errors the route raised after counting
        finally:
            _COUNTED.reset(counted)
        headers["X-Request-Id"] = request_id
        for name, value in cors.headers(event.get("headers")).items():
            headers.setdefault(name, value)
        metrics.add_metric(name="Requests", unit="Count", value=1)
        if result.get("statusCode", 500) >= 500:
            metrics.add_metric(name="ServerErrors", unit="Count", value=1)
        return result

    return handler
