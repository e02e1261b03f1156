"""The tutor's streamed routes (Server-Sent Events) and the classroom page's routes, as an ASGI app.

In AWS, uvicorn serves this app behind the Lambda Web Adapter with response streaming, so each event
leaves as it is produced; behind API Gateway locally, Mangum serves it buffered with the same
framing. The `/v1/ai-tutor/classroom/*` routes take the page's room credential (the participant's
join token) instead of the org key, and answer the browser's CORS preflight.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from verriflo import asgi, ratelimit
from verriflo.errors import VerrifloError

from ai_tutor import credentials
from ai_tutor.config import tutor_settings

if TYPE_CHECKING:
    from ai_tutor import answering

# The answering logic (models, retrieval, providers, speech, metering and the ledger) is imported by
# the routes that answer, not with the app: uvicorn loads the app before it serves anything, and the
# page's preflight and state routes never need it.

SSE = "text/event-stream"
SSE_HEADERS = {"Cache-Control": "no-cache", "Connection": "keep-alive"}
CLASSROOM = "/v1/ai-tutor/classroom"
GROUP = "ai-tutor"

app = asgi.App(max_body_bytes=8_000_000)


def _stream(prepared: answering.Prepared) -> asgi.Stream:
    from ai_tutor import answering

    return asgi.Stream(answering.sse(answering.answer(prepared)), SSE, headers=dict(SSE_HEADERS))


@app.route("POST", "/v1/ai-tutor/chat/stream", group=GROUP)
def chat_stream(request: asgi.Request) -> asgi.Stream:
    """A student's question answered as SSE: `data: {"text", "usage": null}` ..., usage, `[DONE]`."""
    from ai_tutor import answering
    from ai_tutor.models import TutorChatRequest

    body = request.parse(TutorChatRequest)
    assert request.org is not None  # the group authenticates
    return _stream(answering.prepare_chat(request.org.org_id, body, request.request_id))


# --- the classroom page (room credential, CORS) -------------------------------------------------------


def _cors() -> dict[str, str]:
    return {
        "Access-Control-Allow-Origin": tutor_settings().page_origin,
        "Access-Control-Allow-Headers": "Authorization, Content-Type",
        "Access-Control-Allow-Methods": "GET, POST, PUT, OPTIONS",
        "Access-Control-Expose-Headers": "X-Request-Id, Retry-After",
        "Access-Control-Max-Age": "600",
        "Vary": "Origin",
    }


def _count(credential: credentials.RoomCredential) -> dict[str, str]:
    """The participant's own budget (org + room + uid from the verified token), then the org's."""
    settings = tutor_settings()
    return ratelimit.enforce_member(
        credentials.org_context(credential),
        GROUP,
        f"{credential.room_id}\n{credential.uid}",
        (settings.participant_rate_limit, settings.participant_rate_window_s),
    )


def _page(
    route: Callable[[asgi.Request, credentials.RoomCredential], asgi.Reply | asgi.Stream],
) -> Callable[[asgi.Request], asgi.Reply | asgi.Stream]:
    """A page route: verify the room credential, count the request, and answer errors with CORS
    headers too (a browser hides an error body that lacks them)."""

    def run(request: asgi.Request) -> asgi.Reply | asgi.Stream:
        try:
            credential = credentials.verify(request.headers)
            limits = _count(credential)
            answer = route(request, credential)
        except VerrifloError as exc:
            return asgi.Reply(exc.envelope(), exc.status, dict(exc.headers) | _cors())
        answer.headers.update(limits | _cors())
        return answer

    run.__doc__ = route.__doc__
    return run


def _preflight(_request: asgi.Request) -> asgi.Reply:
    return asgi.Reply({"success": True, "data": None}, 200, _cors())


@_page
def classroom_chat(request: asgi.Request, credential: credentials.RoomCredential) -> asgi.Stream:
    """A question from the classroom page's tutor panel, answered as SSE."""
    from ai_tutor import answering
    from ai_tutor.models import TutorClassroomChat

    body = request.parse(TutorClassroomChat)
    asker = answering.Asker(credential.org_id, credential.room_id, credential.uid)
    prepared = answering.prepare(
        asker, answering.Question(body.text, body.audio, body.response_modality), request.request_id
    )
    return _stream(prepared)


@_page
def classroom_state(_request: asgi.Request, credential: credentials.RoomCredential) -> asgi.Reply:
    """The panel's view: switch, mode, and the exchanges this participant may read."""
    from ai_tutor import manage

    return asgi.Reply({"success": True, "data": manage.classroom_state(credential).model_dump(mode="json")})


@_page
def classroom_settings(request: asgi.Request, credential: credentials.RoomCredential) -> asgi.Reply:
    """The teacher's tutor switch and mode."""
    from ai_tutor import manage
    from ai_tutor.models import TutorUpdateRoomSettings

    body = request.parse(TutorUpdateRoomSettings)
    return asgi.Reply(
        {"success": True, "data": manage.classroom_settings(credential, body).model_dump(mode="json")}
    )


app.route("POST", f"{CLASSROOM}/chat/stream")(classroom_chat)
app.route("GET", f"{CLASSROOM}/state")(classroom_state)
app.route("PUT", f"{CLASSROOM}/settings")(classroom_settings)
for _path in (f"{CLASSROOM}/chat/stream", f"{CLASSROOM}/state", f"{CLASSROOM}/settings"):
    app.route("OPTIONS", _path)(_preflight)


def openapi_document() -> dict:
    """The routes of this app as OpenAPI paths and component schemas (merged into the API's document)."""
    from ai_tutor.models import (
        TUTOR_STREAM_EVENTS,
        TutorChatRequest,
        TutorClassroomChat,
        TutorClassroomState,
        TutorRoomSettings,
        TutorUpdateRoomSettings,
    )

    doc = asgi.OpenApiPaths()
    stream = doc.stream(
        SSE,
        "Server-Sent Events (`Cache-Control: no-cache`, `Connection: keep-alive`), each `data: <json>` "
        "then a blank line: for a spoken question first its transcript (`text` empty), then "
        "text pieces as produced (with responseModality audio/both, also speech per "
        "sentence), then the usage event with the sources, then `data: [DONE]`. A failure mid-stream "
        "sends the error event instead of the usage event, then `[DONE]`; the exchange is recorded as "
        "failed.",
        TUTOR_STREAM_EVENTS,
    )
    errors = {
        "400": "The request is not valid.",
        "401": "A valid credential is required.",
        "402": "Insufficient credits.",
        "403": "Not a student of an active room, or the tutor is off.",
        "404": "No such room in this organisation.",
        "413": "Text or audio over the limit.",
        "429": "Too many requests.",
        "503": "A dependency is unavailable.",
    }

    def only(*codes: str) -> dict[str, str]:
        return {code: errors[code] for code in codes}

    # Not the org key: the participant's join token, checked by the function itself.
    page = {
        "tags": ["ai-tutor"],
        "security": [],
        "parameters": [
            {
                "in": "header",
                "name": "Authorization",
                "required": True,
                "schema": {"type": "string"},
                "description": "`Bearer <join token>`: the token of the classroom page "
                "(from room create/join)",
            }
        ],
    }
    doc.add(
        "POST",
        "/v1/ai-tutor/chat/stream",
        stream,
        errors,
        body=TutorChatRequest,
        summary="Ask the AI tutor during class (streamed as Server-Sent Events)",
        tags=["ai-tutor"],
        operationId="chat_stream_v1_ai_tutor_chat_stream_post",
    )
    doc.add(
        "POST",
        f"{CLASSROOM}/chat/stream",
        stream,
        errors,
        body=TutorClassroomChat,
        summary="The classroom page asks the tutor (room token; SSE as /v1/ai-tutor/chat/stream)",
        operationId="classroom_chat_stream_post",
        **page,
    )
    doc.add(
        "GET",
        f"{CLASSROOM}/state",
        doc.json_ok(TutorClassroomState),
        only("401", "404", "429", "503"),
        summary="The tutor panel's state (room token): switch, mode, visible exchanges",
        operationId="classroom_state_get",
        **page,
    )
    doc.add(
        "PUT",
        f"{CLASSROOM}/settings",
        doc.json_ok(TutorRoomSettings),
        only("400", "401", "403", "404", "429", "503"),
        body=TutorUpdateRoomSettings,
        summary="The teacher switches the tutor or its mode from the classroom page (room token)",
        operationId="classroom_settings_put",
        **page,
    )
    for name, path in (
        ("chat", f"{CLASSROOM}/chat/stream"),
        ("state", f"{CLASSROOM}/state"),
        ("settings", f"{CLASSROOM}/settings"),
    ):
        doc.paths[path]["options"] = {
            "summary": "CORS preflight of the classroom page",
            "tags": ["ai-tutor"],
            "security": [],
            "responses": {"200": {"description": "Access-Control-Allow-* headers for the page's origin"}},
            "operationId": f"classroom_{name}_options",
        }
    return doc.document()
