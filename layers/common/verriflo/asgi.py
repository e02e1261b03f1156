"""A thin ASGI front for routes that stream: the same authentication, rate limits, body limit,
error envelope and request ids as `verriflo.api`, for answers that leave as they are produced.

Powertools' resolver returns one buffered body per invocation, so streamed answers (NDJSON, SSE) are
served by this adapter instead: under uvicorn behind the AWS Lambda Web Adapter (response streaming)
in AWS, and through Mangum (which buffers, with the same framing) behind API Gateway locally.
Routes are plain synchronous functions, run in a worker thread so pymongo, redis and httpx calls
never block the event loop; a streamed body is a synchronous iterator pulled one item at a time.
No third-party imports: the common layer stays light.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from functools import cache
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from pydantic import BaseModel, ValidationError

from verriflo import access, cors, ratelimit
from verriflo.auth import OrgContext
from verriflo.errors import MethodNotAllowed, NotFound, PayloadTooLarge, ValidationFailed, VerrifloError
from verriflo.observability import logger
from verriflo.settings import api_settings

M = TypeVar("M", bound=BaseModel)
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class Request:
    """What a route sees: headers (lower-case names), the raw body, the caller and the request id."""

    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    body: bytes
    request_id: str
    org: OrgContext | None = None
    authorizer: dict[str, Any] = field(default_factory=dict)

    def parse(self, model: type[M]) -> M:
        """The JSON body as `model`; UnsupportedMediaType (415) when declared as anything but JSON,
        ValidationFailed (400) in the API's message format when it is not JSON or not the model."""
        from verriflo.api import _field_message, check_json_media_type

        check_json_media_type(self.headers.get("content-type"))
        try:
            return model.model_validate_json(self.body or b"{}")
        except ValidationError as exc:
            message, details = _field_message(list(exc.errors()))
            raise ValidationFailed(message, details={"fields": details}) from exc


@dataclass
class Reply:
    """A complete JSON answer."""

    body: Any
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Stream:
    """An answer sent piece by piece as the iterator produces it."""

    chunks: Iterator[bytes]
    content_type: str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


Route = Callable[[Request], Reply | Stream]


@dataclass
class _Entry:
    route: Route
    group: str | None
    internal: bool


def _request_id(scope: Scope, headers: dict[str, str]) -> str:
    # API Gateway's id under Mangum; under the Lambda Web Adapter the request context is a header.
    event = scope.get("aws.event") or {}
    rid = (event.get("requestContext") or {}).get("requestId")
    if not rid and headers.get("x-amzn-request-context"):
        try:
            rid = json.loads(headers["x-amzn-request-context"]).get("requestId")
        except ValueError:
            rid = None
    return str(rid or uuid.uuid4().hex)


class App:
    """An ASGI application of explicitly registered routes."""

    def __init__(self, *, max_body_bytes: int | None = None) -> None:
        self._routes: dict[tuple[str, str], _Entry] = {}
        self._max_body = max_body_bytes

    def route(
        self, method: str, path: str, *, group: str | None = None, internal: bool = False
    ) -> Callable[[Route], Route]:
        """Register a route: `group` is an org route's rate-limit budget, `internal` marks a service
        route. Who may call it is `verriflo.access`'s table (a test checks that both agree)."""

        def register(fn: Route) -> Route:
            self._routes[(method.upper(), path)] = _Entry(fn, group, internal)
            return fn

        return register

    @property
    def paths(self) -> list[tuple[str, str]]:
        """(method, path) of every route."""
        return sorted(self._routes)

    def body_limit(self) -> int:
        """The largest request body accepted."""
        return self._max_body or api_settings().max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            # Nothing to open or close: stores connect lazily on first use.
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        request_id = _request_id(scope, headers)
        limits: dict[str, str] = {}  # filled once the request is counted against its budget
        try:
            answer = await self._answer(scope, receive, headers, request_id, limits)
        except VerrifloError as exc:
            if exc.status >= 500:
                logger.warning(
                    "request.failed", extra={"error": exc.code, "cause": type(exc.__cause__).__name__}
                )
            answer = Reply(exc.envelope(), exc.status, dict(exc.headers))
        except Exception as exc:  # noqa: BLE001 - the last line of defence: never a bare 500 page
            logger.exception("request.crashed", extra={"error_type": type(exc).__name__})
            failure = VerrifloError()
            answer = Reply(failure.envelope(), failure.status)
        for name, value in limits.items():
            answer.headers.setdefault(name, value)  # errors the route raised after counting too
        answer.headers["X-Request-Id"] = request_id
        for name, value in cors.headers(headers).items():
            answer.headers.setdefault(name, value)  # the classroom routes' own CORS stays theirs
        await _send(answer, send)

    async def _answer(
        self, scope: Scope, receive: Receive, headers: dict[str, str], request_id: str, limits: dict[str, str]
    ) -> Reply | Stream:
        method, path = scope["method"].upper(), scope["path"]
        entry = self._routes.get((method, path))
        if entry is None:
            allowed = sorted(m for m, p in self._routes if p == path)
            if allowed:
                raise MethodNotAllowed(headers={"Allow": ", ".join(allowed)})
            raise NotFound(f"No route for {method} {path}.")
        declared = headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > self.body_limit():
            raise PayloadTooLarge(f"The request body is larger than {self.body_limit()} bytes.")
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if len(body) > self.body_limit():
                raise PayloadTooLarge(f"The request body is larger than {self.body_limit()} bytes.")
            if not message.get("more_body"):
                break
        event = scope.get("aws.event") or {}
        request = Request(
            method=method,
            path=path,
            headers=headers,
            query=dict(parse_qsl(scope.get("query_string", b"").decode())),
            body=bytes(body),
            request_id=request_id,
            authorizer=(event.get("requestContext") or {}).get("authorizer") or {},
        )
        return await asyncio.to_thread(self._run, entry, request, limits)

    def _run(self, entry: _Entry, request: Request, limits: dict[str, str]) -> Reply | Stream:
        logger.append_keys(request_id=request.request_id)
        request.org = access.admit(request.method, request.path, request.headers, request.authorizer)
        if request.org is not None:
            logger.append_keys(org_id=request.org.org_id)
        if entry.group and request.org is not None:
            limits.update(ratelimit.enforce(request.org, entry.group).headers())
        return entry.route(request)


_END = object()


async def _send(answer: Reply | Stream, send: Send) -> None:
    if isinstance(answer, Reply):
        body = json.dumps(answer.body, default=str).encode()
        headers = {"content-type": "application/json", "content-length": str(len(body))} | {
            k.lower(): v for k, v in answer.headers.items()
        }
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
            }
        )
        await send({"type": "http.response.body", "body": body})
        return
    headers = {
        "content-type": answer.content_type,
        "cache-control": "no-cache",
        "x-accel-buffering": "no",
    } | {k.lower(): v for k, v in answer.headers.items()}
    await send(
        {
            "type": "http.response.start",
            "status": answer.status,
            "headers": [(k.encode(), v.encode()) for k, v in headers.items()],
        }
    )
    iterator = iter(answer.chunks)
    try:
        while (chunk := await asyncio.to_thread(next, iterator, _END)) is not _END:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    finally:
        close = getattr(iterator, "close", None)
        if close is not None:
            close()
    await send({"type": "http.response.body", "body": b""})


def lambda_handler(app: App) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """The Lambda entry point for API Gateway proxy events: Mangum in front of the app (buffered).

    Mangum is imported by the first streamed request, not at init: a function whose cold start
    serves a buffered route never pays for it.
    """

    @cache
    def adapter() -> Callable[[dict[str, Any], Any], dict[str, Any]]:
        from mangum import Mangum
        from mangum.adapter import DEFAULT_TEXT_MIME_TYPES

        # NDJSON is text: without this Mangum would base64 the body and API Gateway pass it on as such.
        return Mangum(
            app,
            lifespan="off",
            api_gateway_base_path="/",
            text_mime_types=[*DEFAULT_TEXT_MIME_TYPES, "application/x-ndjson"],
        )

    @logger.inject_lambda_context(clear_state=True)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if not _utf8(event):
            return _refusal(event)
        _ensure_event_loop()
        return adapter()(event, context)

    return handler


def _ensure_event_loop() -> None:
    """Mangum's HTTP cycle runs on the thread's current event loop, which Mangum sets only when the
    adapter is made; an `asyncio.run()` anywhere in the process since then leaves no current loop
    (and `get_event_loop()` raising), so one is set again here when needed."""
    try:
        loop = asyncio.get_event_loop()
    except RuntimeError:
        loop = None
    if loop is None or loop.is_closed():
        asyncio.set_event_loop(asyncio.new_event_loop())


def _utf8(event: dict[str, Any]) -> bool:
    """Whether the event's path and query can be UTF-8 encoded (Mangum encodes them and raises,
    which would be a Lambda error instead of an answer, for text holding lone surrogates)."""
    texts = [event.get("path") or ""]
    for key in ("queryStringParameters", "multiValueQueryStringParameters"):
        for name, value in (event.get(key) or {}).items():
            texts += [name, *(value if isinstance(value, list) else [value or ""])]
    try:
        "".join(texts).encode()
    except UnicodeEncodeError:
        return False
    return True


def _refusal(event: dict[str, Any]) -> dict[str, Any]:
    """The 400 envelope as a proxy result, for an event Mangum cannot turn into a request."""
    failure = ValidationFailed("The request path or query string is not valid UTF-8.")
    request_id = (event.get("requestContext") or {}).get("requestId") or uuid.uuid4().hex
    return {
        "statusCode": failure.status,
        "headers": {"Content-Type": "application/json", "X-Request-Id": request_id},
        "body": json.dumps(failure.envelope()),
        "isBase64Encoded": False,
    }


def split_handler(
    buffered: Callable[[dict[str, Any], Any], dict[str, Any]], streamed: App
) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    """One Lambda entry point for a function with both kinds of routes: the streamed app's paths go
    to it (through Mangum), every other path to the buffered handler (a Powertools resolver's)."""
    streamed_handler = lambda_handler(streamed)
    paths = frozenset(path for _, path in streamed.paths)

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if event.get("path") in paths:
            return streamed_handler(event, context)
        return buffered(event, context)

    return handler


# --- describing the routes (for `handler.openapi_paths()`, merged into the API's document) -----------

_ERROR_BODY = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}}


class OpenApiPaths:
    """The OpenAPI paths and component schemas of an `App`'s routes, built the way every streamed
    function describes them: models by `$ref`, errors in the envelope, a stream's 200 as its media
    type with one schema per kind of event. `document()` is what `openapi_paths()` returns."""

    def __init__(self) -> None:
        self.paths: dict[str, dict[str, Any]] = {}
        self.schemas: dict[str, Any] = {}

    def ref(self, model: type[BaseModel]) -> dict[str, Any]:
        """A `$ref` to the model's schema (added, with the schemas it uses, to the components)."""
        schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
        self.schemas.update(schema.pop("$defs", {}))
        self.schemas[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    def stream(self, media_type: str, description: str, events: list[type[BaseModel]]) -> dict[str, Any]:
        """A streamed 200: `description` says how events are framed; each event is one of `events`
        (`x-itemSchema`: OpenAPI 3.2's `itemSchema` for sequential media, as an extension of 3.1)."""
        each = {"oneOf": [self.ref(event) for event in events]}
        return {
            "description": description,
            "content": {media_type: {"schema": {"type": "string"}, "x-itemSchema": each}},
        }

    def json_ok(self, model: type[BaseModel]) -> dict[str, Any]:
        """A buffered 200 in the envelope: `{"success": true, "data": <model>}`."""
        data = {
            "type": "object",
            "required": ["success", "data"],
            "properties": {"success": {"type": "boolean", "const": True}, "data": self.ref(model)},
        }
        return {"description": "Success", "content": {"application/json": {"schema": data}}}

    def add(
        self,
        method: str,
        path: str,
        ok: dict[str, Any],
        errors: dict[str, str],
        *,
        body: type[BaseModel] | None = None,
        **operation: Any,
    ) -> None:
        """One operation: its 200 (`stream` or `json_ok`), its errors (status -> description) in
        the envelope, its request body model, and any other OpenAPI fields (summary, tags, ...)."""
        if body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": self.ref(body)}},
            }
        answers = {"200": ok} | {code: {"description": text, **_ERROR_BODY} for code, text in errors.items()}
        self.paths.setdefault(path, {})[method.lower()] = operation | {"responses": answers}

    def document(self) -> dict[str, Any]:
        """`{"paths", "components": {"schemas"}}`, as `verriflo_tools.openapi` merges it."""
        return {"paths": self.paths, "components": {"schemas": self.schemas}}
