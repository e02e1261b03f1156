"""The AI API's streamed routes (NDJSON) as an ASGI app.

In AWS, uvicorn serves this app behind the AWS Lambda Web Adapter with response streaming, so each
line leaves the function as it is produced. Behind API Gateway locally, Mangum serves it buffered,
with the same framing. Both use the common layer's auth, rate limits, envelope and request ids.
"""

from __future__ import annotations

from verriflo import asgi
from verriflo.errors import Unauthorized

from ai_agent import answering, models

app = asgi.App(max_body_bytes=6_000_000)


@app.route("POST", "/v1/ai-agent/chat/stream", group="ai")
def chat_stream(request: asgi.Request) -> asgi.Stream:
    """A chat turn answered as NDJSON lines: text/audio as produced, citations, image, usage, done."""
    body = request.parse(models.ChatRequest)
    if request.org is None:  # the "ai" group always authenticates; this only guards a wiring mistake
        raise Unauthorized()
    prepared = answering.prepare_chat(request.org, body, request.request_id)
    return asgi.Stream(answering.ndjson(answering.answer(prepared)), models.NDJSON)


@app.route("POST", "/api/v1/generate/stream", internal=True)
def generate_stream(request: asgi.Request) -> asgi.Stream:
    """Internal: generation for another service, streamed as NDJSON (X-Dispatch-Secret)."""
    body = request.parse(models.GenerateRequest)
    prepared = answering.prepare_generate(body, request.request_id)
    return asgi.Stream(answering.ndjson(answering.answer(prepared)), models.NDJSON)


def openapi_document() -> dict:
    """The streamed routes as OpenAPI paths and component schemas (for the merged document)."""
    doc = asgi.OpenApiPaths()
    stream = doc.stream(
        models.NDJSON,
        "NDJSON, one JSON object per line, sent as produced, each with its `type`: first `chat` when the "
        "request started a new chat (no `chatId` sent) and `transcript` when audio was sent, then "
        "`text` and `audio` "
        "as the answer is written, then `citation`s, an `image`, `usage`, and `done`, always last. A "
        "failure mid-stream sends `error`, then `done`; nothing of that answer is kept.",
        models.STREAM_EVENTS,
    )
    doc.add(
        "POST",
        "/v1/ai-agent/chat/stream",
        stream,
        {
            "400": "The request is not valid.",
            "401": "A valid key is required.",
            "402": "Insufficient credits.",
            "404": "A knowledge base was not found.",
            "409": "A knowledge base was built with another embedding model.",
            "413": "Media or message over the limit.",
            "415": "Unsupported media type.",
            "429": "Too many requests.",
            "503": "A dependency is unavailable.",
        },
        body=models.ChatRequest,
        summary="Ask the AI (streamed NDJSON)",
        tags=["ai-agent"],
        operationId="chat_stream_v1_ai_agent_chat_stream_post",
    )
    doc.add(
        "POST",
        "/api/v1/generate/stream",
        stream,
        {
            "400": "The request is not valid.",
            "402": "Insufficient credits.",
            "403": "This route is internal.",
            "404": "A knowledge base was not found.",
            "409": "A knowledge base was built with another embedding model.",
            "503": "A dependency is unavailable.",
        },
        body=models.GenerateRequest,
        summary="Internal: generate an answer (streamed NDJSON)",
        tags=["internal"],
        operationId="generate_stream_api_v1_generate_stream_post",
    )
    return doc.document()
