"""The AI API: chat (whole or streamed), chat history, knowledge bases, usage, internal generation.

Buffered routes use the Powertools resolver like every function; the streamed routes live in
`ai_agent.streaming` (an ASGI app) and this entry point hands their events to it.
"""

# No `from __future__ import annotations` here: Powertools resolves each route's dependencies with
# typing.get_type_hints on every request, and string annotations are re-compiled each time.
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Query
from verriflo import asgi
from verriflo.api import Envelope, Org, create_app, internal, lambda_handler, ok, protected, responses
from verriflo_ai import knowledge
from verriflo_ai.video_search import KnowledgeBaseVideo, KnowledgeBaseVideoList

from ai_agent import answering, chats, models, streaming, usage, videos

app = create_app(max_body_bytes=streaming.app.body_limit())
api = protected(app, "ai")
service = internal(app)
TAGS = ["ai-agent"]


@api.post(
    "/v1/ai-agent/chat",
    summary="Ask the AI (one JSON answer)",
    tags=TAGS,
    responses=responses(models.ChatAnswer, 400, 401, 402, 404, 409, 413, 415, 429, 502, 503),
)
def chat(body: models.ChatRequest, org: Org) -> Envelope[models.ChatAnswer]:
    """Text, voice or an image in; the whole answer, with citations, speech and charts, out."""
    prepared = answering.prepare_chat(org, body, app.current_event.request_context.request_id)
    return ok(answering.collect(prepared))


@api.get(
    "/v1/ai-agent/chats",
    summary="List chats",
    tags=TAGS,
    responses=responses(models.ChatList, 400, 401, 429, 503),
)
def list_chats(
    org: Org,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[
        str | None, Query(max_length=120, description="nextCursor of the previous page")
    ] = None,
) -> Envelope[models.ChatList]:
    """The org's chats that have not expired, most recently updated first: title, preview, turns."""
    return ok(chats.list_chats(org, limit, cursor))


@api.get(
    "/v1/ai-agent/chats/<chat_id>",
    summary="Read a chat's history",
    tags=TAGS,
    responses=responses(models.ChatHistory, 400, 401, 404, 429, 503),
)
def read_chat(chat_id: str, org: Org) -> Envelope[models.ChatHistory]:
    """The stored messages of one of the org's chats."""
    return ok(chats.read_chat(org, chat_id))


@api.delete(
    "/v1/ai-agent/chats/<chat_id>",
    summary="Delete a chat's history",
    tags=TAGS,
    responses=responses(models.ChatDeleted, 400, 401, 404, 429, 503),
)
def delete_chat(chat_id: str, org: Org) -> Envelope[models.ChatDeleted]:
    """Forget one of the org's chats."""
    return ok(chats.delete_chat(org, chat_id))


@api.get(
    "/v1/ai-agent/usage/summary",
    summary="AI usage between two dates",
    tags=TAGS,
    responses=responses(models.UsageSummary, 400, 401, 429, 503),
)
def usage_summary(
    org: Org,
    start_date: Annotated[str | None, Query(alias="startDate", description="YYYY-MM-DD")] = None,
    end_date: Annotated[str | None, Query(alias="endDate", description="YYYY-MM-DD, inclusive")] = None,
) -> Envelope[models.UsageSummary]:
    """Sessions, tokens and cost of the AI API and the AI tutor."""
    return ok(usage.usage_summary(org, start_date, end_date))


@api.post(
    "/v1/ai-agent/knowledge-bases",
    summary="Create a knowledge base",
    tags=TAGS,
    responses=responses(knowledge.KnowledgeBase, 400, 401, 429, 503, status=201),
)
def create_knowledge_base(body: models.CreateKnowledgeBase, org: Org) -> Envelope[knowledge.KnowledgeBase]:
    """An empty knowledge base to add documents to."""
    return ok(knowledge.create_base(org.org_id, body.name, body.description), status=201)


@api.get(
    "/v1/ai-agent/knowledge-bases",
    summary="List knowledge bases",
    tags=TAGS,
    responses=responses(knowledge.KnowledgeBaseList, 401, 429, 503),
)
def list_knowledge_bases(org: Org) -> Envelope[knowledge.KnowledgeBaseList]:
    """The org's knowledge bases, newest first."""
    return ok(knowledge.list_bases(org.org_id))


@api.get(
    "/v1/ai-agent/knowledge-bases/<kb_id>",
    summary="Read a knowledge base",
    tags=TAGS,
    responses=responses(knowledge.KnowledgeBase, 401, 404, 429, 503),
)
def get_knowledge_base(kb_id: str, org: Org) -> Envelope[knowledge.KnowledgeBase]:
    """One of the org's knowledge bases."""
    return ok(knowledge.get_base(org.org_id, kb_id))


@api.delete(
    "/v1/ai-agent/knowledge-bases/<kb_id>",
    summary="Delete a knowledge base",
    tags=TAGS,
    responses=responses(models.Deleted, 401, 404, 429, 503),
)
def delete_knowledge_base(kb_id: str, org: Org) -> Envelope[models.Deleted]:
    """Delete a knowledge base with all its documents."""
    knowledge.delete_base(org.org_id, kb_id)
    return ok(models.Deleted(id=kb_id))


@api.post(
    "/v1/ai-agent/knowledge-bases/<kb_id>/documents",
    summary="Add a document",
    tags=TAGS,
    responses=responses(knowledge.Document, 400, 401, 404, 409, 413, 415, 429, 502, 503, status=201)
    | knowledge.queued_response(knowledge.Document, "GET …/documents/{documentId}"),
)
def add_document(kb_id: str, body: models.AddDocument, org: Org) -> Envelope[knowledge.Document]:
    """Text, Markdown or PDF, chunked and embedded: a small one in the request (201, searchable at
    once), a larger one through the ingestion queue (202, `processing`)."""
    doc = knowledge.add_upload(org.org_id, kb_id, body)
    return ok(doc, status=201 if doc.status == "ready" else 202)


@api.get(
    "/v1/ai-agent/knowledge-bases/<kb_id>/documents/<document_id>",
    summary="Read a document (poll a queued one)",
    tags=TAGS,
    responses=responses(knowledge.Document, 401, 404, 429, 503),
)
def get_document(kb_id: str, document_id: str, org: Org) -> Envelope[knowledge.Document]:
    """One document with its `status` (`processing`, `ready`, `failed`) and progress."""
    return ok(knowledge.get_document(org.org_id, kb_id, document_id))


@api.get(
    "/v1/ai-agent/knowledge-bases/<kb_id>/documents",
    summary="List documents",
    tags=TAGS,
    responses=responses(knowledge.DocumentList, 401, 404, 429, 503),
)
def list_documents(kb_id: str, org: Org) -> Envelope[knowledge.DocumentList]:
    """A knowledge base's documents, newest first."""
    return ok(knowledge.list_documents(org.org_id, kb_id))


@api.delete(
    "/v1/ai-agent/knowledge-bases/<kb_id>/documents/<document_id>",
    summary="Delete a document",
    tags=TAGS,
    responses=responses(models.Deleted, 401, 404, 429, 503),
)
def delete_document(kb_id: str, document_id: str, org: Org) -> Envelope[models.Deleted]:
    """Remove a document and its passages from a knowledge base."""
    knowledge.delete_document(org.org_id, kb_id, document_id)
    return ok(models.Deleted(id=document_id))


@api.post(
    "/v1/ai-agent/knowledge-bases/<kb_id>/videos",
    summary="Add a video",
    tags=TAGS,
    responses=responses(KnowledgeBaseVideo, 400, 401, 404, 429, 503, status=201),
)
def add_video(kb_id: str, body: models.AddKnowledgeBaseVideo, org: Org) -> Envelope[KnowledgeBaseVideo]:
    """One of the org's videos or recordings: its transcript's moments answer the base's questions,
    cited with `videoId`, `startS`, `endS` and `playbackUrl` (201; 200 when it was already there)."""
    entry, created = videos.add(org, kb_id, body.video_id)
    return ok(entry, status=201 if created else 200)


@api.get(
    "/v1/ai-agent/knowledge-bases/<kb_id>/videos",
    summary="List videos",
    tags=TAGS,
    responses=responses(KnowledgeBaseVideoList, 401, 404, 429, 503),
)
def list_videos(kb_id: str, org: Org) -> Envelope[KnowledgeBaseVideoList]:
    """A knowledge base's videos, with whether each transcript is indexed yet."""
    return ok(videos.listed(org, kb_id))


@api.delete(
    "/v1/ai-agent/knowledge-bases/<kb_id>/videos/<video_id>",
    summary="Remove a video",
    tags=TAGS,
    responses=responses(models.Deleted, 401, 404, 429, 503),
)
def remove_video(kb_id: str, video_id: str, org: Org) -> Envelope[models.Deleted]:
    """Take a video out of a knowledge base (the video itself stays)."""
    videos.remove(org, kb_id, video_id)
    return ok(models.Deleted(id=video_id))


@service.post(
    "/api/v1/generate",
    summary="Internal: generate an answer",
    tags=["internal"],
    responses=responses(models.ChatAnswer, 400, 402, 403, 404, 409, 413, 502, 503),
)
def generate(body: models.GenerateRequest) -> Envelope[models.ChatAnswer]:
    """Generation for another service (X-Dispatch-Secret), metered to the org named."""
    prepared = answering.prepare_generate(body, app.current_event.request_context.request_id)
    return ok(answering.collect(prepared))


# Streamed (and, for the tutor, classroom) routes go to the ASGI app, the rest to Powertools.
handler = asgi.split_handler(lambda_handler(app), streaming.app)


def openapi_paths() -> dict[str, Any]:
    """OpenAPI paths of the streamed routes (merged into the API's document by verriflo_tools.openapi)."""
    return streaming.openapi_document()
