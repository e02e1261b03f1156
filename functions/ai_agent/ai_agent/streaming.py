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


_LINE_TYPES = {
    "text": 'a piece of the answer: {"type": "text", "text": "..."}',
    "audio": 'speech for a sentence: {"type": "audio", "audio": base64 MP3, "mimeType", "index", "text"}',
    "citation": 'a passage used: {"type": "citation", "citation": {index, knowledgeBaseId, documentId, '
    "title, chunk, score, text}}",
    "image": 'a chart: {"type": "image", "image": base64 PNG, "mimeType", "alt"}',
    "usage": '{"type": "usage", "usage": {inputTokens, outputTokens, totalTokens, credits}}',
    "error": 'the answer failed mid-stream: {"type": "error", "error": CODE, "message"}; nothing is kept',
    "done": 'always last: {"type": "done"}',
}


def openapi_document() -> dict:
    """The streamed routes as OpenAPI paths and component schemas (for the merged document)."""
    schemas: dict = {}

    def ref(model: type) -> dict:
        schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}}
    stream = {
        "description": "NDJSON, one JSON object per line, sent as produced. Line types: "
        + "; ".join(f"`{k}`: {v}" for k, v in _LINE_TYPES.items()),
        "content": {models.NDJSON: {"schema": {"type": "string"}}},
    }

    def operation(summary: str, model: type, statuses: dict[str, str], **extra: object) -> dict:
        return {
            "post": {
                "summary": summary,
                "tags": extra.pop("tags", ["ai-agent"]),
                "operationId": extra.pop("operation_id"),
                "requestBody": {"required": True, "content": {"application/json": {"schema": ref(model)}}},
                "responses": {"200": stream}
                | {code: {"description": text, **error} for code, text in statuses.items()},
                **extra,
            }
        }

    paths = {
        "/v1/ai-agent/chat/stream": operation(
            "Ask the AI (streamed NDJSON)",
            models.ChatRequest,
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
            operation_id="chat_stream_v1_ai_agent_chat_stream_post",
        ),
        "/api/v1/generate/stream": operation(
            "Internal: generate an answer (streamed NDJSON)",
            models.GenerateRequest,
            {
                "400": "The request is not valid.",
                "402": "Insufficient credits.",
                "403": "This route is internal.",
                "404": "A knowledge base was not found.",
                "409": "A knowledge base was built with another embedding model.",
                "503": "A dependency is unavailable.",
            },
            tags=["internal"],
            operation_id="generate_stream_api_v1_generate_stream_post",
        ),
    }
    return {"paths": paths, "components": {"schemas": schemas}}
