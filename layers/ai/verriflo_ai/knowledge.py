"""Knowledge bases: ingest documents (extract, chunk, embed, store) and search them.

Ingestion is bounded per request: a document of up to `inline_document_chunks` passages is embedded
in the request (201, `ready`); a larger one (or a PDF over `inline_pdf_bytes`) is stored in S3 with a
`processing` record and a message on the ingestion queue (202), and `ingest_queued` (the worker)
embeds it in batches, resuming where an earlier attempt stopped, then marks it `ready` or `failed`
with the reason. Callers poll the document.

Search keeps, per knowledge base, an in-memory float32 matrix of its chunk vectors, loaded from
MongoDB once and reloaded only when the base's version changes (one small query per search checks
it). A query is then one matrix-vector product: about a millisecond at 10k chunks. The local
MongoDB-wire server has no vector search; on Atlas, `$vectorSearch` over the same `kb_chunks.vector`
field is the path for bases too large to hold in a function's memory.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field
from verriflo.errors import (
    Conflict,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    UpstreamError,
    ValidationFailed,
    VerrifloError,
)
from verriflo.models import ApiModel

from verriflo_ai import ingest_store, kb_store
from verriflo_ai.documents import PDF, Chunk, chunk_document
from verriflo_ai.embeddings import DIMENSION, MODEL_ID, embedder
from verriflo_ai.providers import Passage, ProviderError
from verriflo_ai.settings import ai_settings
from verriflo_ai.uploads import DocumentUpload

if TYPE_CHECKING:
    import numpy as np


class KnowledgeBase(ApiModel):
    """A knowledge base of the org."""

    knowledge_base_id: str
    name: str
    description: str = ""
    document_count: int = 0
    chunk_count: int = 0
    embedding_model: str = Field(default=MODEL_ID, description="the embedding model it was built with")
    embedding_dimension: int = Field(default=DIMENSION, description="the length of its vectors")
    created_at: datetime


class Document(ApiModel):
    """A document in a knowledge base."""

    document_id: str
    knowledge_base_id: str
    title: str
    content_type: str
    size_bytes: int
    chunk_count: int = Field(
        description="its passages (while processing: those planned, 0 until a PDF is read)"
    )
    status: Literal["processing", "ready", "failed"] = Field(
        default="ready", description="`processing` while the queue embeds it; searchable once `ready`"
    )
    embedded_chunks: int = Field(default=0, description="passages embedded so far")
    error: str | None = Field(default=None, description="why it `failed`")
    created_at: datetime


class KnowledgeBaseList(ApiModel):
    """The org's knowledge bases."""

    knowledge_bases: list[KnowledgeBase] = Field(default_factory=list)


class DocumentList(ApiModel):
    """A knowledge base's documents."""

    documents: list[Document] = Field(default_factory=list)


def _base(base: kb_store.Base) -> KnowledgeBase:
    model, dimension = _built_with(base)
    return KnowledgeBase(
        knowledge_base_id=base.id,
        name=base.name,
        description=base.description,
        document_count=base.document_count,
        chunk_count=base.chunk_count,
        embedding_model=model,
        embedding_dimension=dimension,
        created_at=base.created_at,
    )


def _built_with(base: kb_store.Base) -> tuple[str, int]:
    # Bases from before the choice existed were all built with the local model.
    return base.embedding_model or MODEL_ID, base.embedding_dimension or DIMENSION


def _check_embedding(kb_id: str, base: kb_store.Base) -> None:
    """Conflict when the base was built with another embedding than the one configured now: its
    vectors and the new ones would not be comparable (different spaces, maybe different lengths)."""
    model, dimension = _built_with(base)
    current = embedder()
    if (model, dimension) != (current.model_id, current.dimension):
        raise Conflict(
            f"Knowledge base '{kb_id}' was built with the embedding model {model} ({dimension} dimensions); "
            f"this deployment embeds with {current.model_id} ({current.dimension}). Create a new knowledge "
            "base, or configure the embedding it was built with."
        )


def check_bases(org_id: str, kb_ids: list[str]) -> dict[str, int]:
    """The named bases' versions: NotFound for any that is not the org's, Conflict for any built with
    another embedding than the configured one (both before any model is called)."""
    found = kb_store.bases(org_id, kb_ids)
    for kb_id in kb_ids:
        _check_embedding(kb_id, found[kb_id])
    return {kb_id: base.version for kb_id, base in found.items()}


def _embed(texts: list[str]) -> np.ndarray:
    try:
        return embedder().embed(texts)
    except ProviderError as exc:
        raise UpstreamError(str(exc)) from exc


def _document(doc: kb_store.StoredDocument) -> Document:
    return Document(
        document_id=doc.id,
        knowledge_base_id=doc.kb_id,
        title=doc.title,
        content_type=doc.content_type,
        size_bytes=doc.size_bytes,
        chunk_count=doc.chunk_count,
        status=doc.status,
        embedded_chunks=doc.chunk_count if doc.status == "ready" else doc.embedded_chunks,
        error=doc.error,
        created_at=doc.created_at,
    )


def create_base(org_id: str, name: str, description: str = "") -> KnowledgeBase:
    """A new, empty knowledge base."""
    base = kb_store.Base(
        id=f"kb_{uuid.uuid4().hex}",
        org_id=org_id,
        name=name,
        description=description,
        embedding_model=embedder().model_id,
        embedding_dimension=embedder().dimension,
        created_at=kb_store.now(),
    )
    kb_store.insert_base(base)
    return _base(base)


def get_base(org_id: str, kb_id: str) -> KnowledgeBase:
    """One of the org's knowledge bases (NotFound for any other)."""
    return _base(kb_store.get_base(org_id, kb_id))


def list_bases(org_id: str, limit: int = 100) -> KnowledgeBaseList:
    """The org's knowledge bases, newest first."""
    return KnowledgeBaseList(knowledge_bases=[_base(d) for d in kb_store.list_bases(org_id, limit)])


def delete_base(org_id: str, kb_id: str) -> None:
    """Delete a knowledge base and everything in it."""
    kb_store.delete_base(org_id, kb_id)
    _index_cache.forget(org_id, kb_id)
    from verriflo_ai import video_store

    video_store.forget_kb(org_id, kb_id)


def _chunks(content: bytes, content_type: str) -> list[Chunk]:
    """The document's passages; 400/415 for content that has none, 413 for too many."""
    settings = ai_settings()
    chunks = chunk_document(content, content_type, settings.chunk_words, settings.chunk_overlap_words)
    if not chunks:
        raise ValidationFailed("The document contains no text.")
    if len(chunks) > settings.max_document_chunks:
        raise PayloadTooLarge(f"Documents are limited to {settings.max_document_chunks} passages.")
    return chunks


def _rows(
    doc: kb_store.StoredDocument, chunks: list[Chunk], vectors: np.ndarray, *, pending: bool
) -> list[kb_store.StoredChunk]:
    return [
        kb_store.StoredChunk(
            org_id=doc.org_id,
            kb_id=doc.kb_id,
            doc_id=doc.id,
            ordinal=c.ordinal,
            text=c.text,
            title=f"{doc.title} > {c.section}" if c.section else doc.title,
            page=c.page,
            vector=vectors[i].tobytes(),
            model=embedder().model_id,
            pending=pending,
        )
        for i, c in enumerate(chunks)
    ]


def _embed_chunks(chunks: list[Chunk]) -> np.ndarray:
    # The section title travels with the passage into the embedding, so headings help retrieval.
    return _embed([f"{c.section}\n{c.text}" if c.section else c.text for c in chunks])


def add_document(org_id: str, kb_id: str, title: str, content: bytes, content_type: str) -> Document:
    """Extract, chunk, embed and store one document: in the request when it is small (`ready`),
    else through the ingestion queue (`processing`; poll it with `get_document`)."""
    settings = ai_settings()
    if len(content) > settings.max_document_bytes:
        raise PayloadTooLarge(f"Documents are limited to {settings.max_document_bytes} bytes.")
    # 404 before any work on another org's base, 409 before embedding with another model than its own
    _check_embedding(kb_id, kb_store.get_base(org_id, kb_id))
    doc = kb_store.StoredDocument(
        id=f"doc_{uuid.uuid4().hex}",
        org_id=org_id,
        kb_id=kb_id,
        title=title,
        content_type=content_type,
        size_bytes=len(content),
        created_at=kb_store.now(),
    )
    if content_type == PDF and len(content) > settings.inline_pdf_bytes:
        return _queue(doc, content, planned=0)  # reading a large PDF is the worker's job too
    chunks = _chunks(content, content_type)
    if len(chunks) > settings.inline_document_chunks:
        return _queue(doc, content, planned=len(chunks))
    vectors = _embed_chunks(chunks)
    doc = replace(doc, status="ready", chunk_count=len(chunks))
    kb_store.insert_document(doc, _rows(doc, chunks, vectors, pending=False))
    return _document(doc)


def add_upload(org_id: str, kb_id: str, upload: DocumentUpload) -> Document:
    """`add_document` for a client's upload, checked first (size, base64, type) by `content_bytes`."""
    return add_document(org_id, kb_id, upload.title, upload.content_bytes(), upload.content_type)


def _queue(doc: kb_store.StoredDocument, content: bytes, planned: int) -> Document:
    """Store the bytes and a `processing` record, then enqueue; on failure nothing is left behind."""
    key = ingest_store.source_key(doc.org_id, doc.kb_id, doc.id)
    doc = replace(doc, status="processing", chunk_count=planned, embedded_chunks=0, source_key=key)
    ingest_store.put_source(key, content, doc.content_type)
    try:
        kb_store.insert_pending_document(doc)
        ingest_store.enqueue(doc.org_id, doc.kb_id, doc.id)
    except VerrifloError:
        kb_store.discard_document(doc.org_id, doc.id)
        ingest_store.delete_source(key)
        raise
    return _document(doc)


def ingest_queued(
    org_id: str,
    kb_id: str,
    doc_id: str,
    *,
    last_attempt: bool = False,
    time_left: Callable[[], float] | None = None,
) -> str:
    """The worker's step for one queued document; safe to run again for the same message.

    Returns what became of it: `ready`, `failed` (bad content or base, or the last attempt failed),
    `gone` (the document or its base was deleted meanwhile) or `done` (an earlier delivery finished it).
    A transient failure (database, storage, embedding service) raises, so the queue retries, unless it
    is the last attempt. `time_left` (seconds, the Lambda context's) stops it between batches before
    the function's timeout would: what is written stays, and the next delivery resumes from there."""
    key = ingest_store.source_key(org_id, kb_id, doc_id)
    doc = kb_store.find_document(org_id, kb_id, doc_id)
    if doc is None:
        kb_store.discard_document(org_id, doc_id)  # chunks a deleted document's attempt wrote
        ingest_store.delete_source(key)
        return "gone"
    if doc.status != "processing":
        ingest_store.delete_source(key)
        return "done"
    try:
        outcome = _ingest(doc, key, time_left)
    except NotFound:
        kb_store.discard_document(org_id, doc_id)
        outcome = "gone"
    except VerrifloError as exc:
        if exc.status >= 500 and not last_attempt:
            raise  # transient: the queue delivers the message again
        reason = exc.message if exc.status < 500 else f"The document could not be embedded: {exc.message}"
        kb_store.fail_document(org_id, doc_id, reason)
        outcome = "failed"
    ingest_store.delete_source(key)
    return outcome


def give_up(org_id: str, kb_id: str, doc_id: str, reason: str) -> None:
    """Mark a queued document failed after its last attempt broke unexpectedly."""
    kb_store.fail_document(org_id, doc_id, reason)
    ingest_store.delete_source(ingest_store.source_key(org_id, kb_id, doc_id))


def requeue_stalled(at: datetime | None = None) -> dict[str, int]:
    """The ingestion sweep: queue again each document stalled in `processing` (no progress for
    `ingest_stall_s`: its route died between storing and queueing it, or its worker died on the
    queue's last receive), at most `ingest_max_requeues` times, then fail it with a reason.

    Each is leased first (`kb_store.take_stalled`), so overlapping sweeps queue it once; a message it
    already had is harmless (the worker's steps are idempotent). One whose queueing fails waits for
    a later sweep; the others go on."""
    from datetime import timedelta

    from verriflo.observability import logger

    settings = ai_settings()
    at = at or kb_store.now()
    before = at - timedelta(seconds=settings.ingest_stall_s)
    done = {"requeued": 0, "failed": 0}
    for doc in kb_store.stalled_documents(before):
        org_id, kb_id, doc_id = doc.org_id, doc.kb_id, doc.doc_id
        try:
            taken = kb_store.take_stalled(org_id, doc_id, before, at)
            if taken is None:
                continue  # finished, or taken by another sweep, meanwhile
            if taken.requeues > settings.ingest_max_requeues:
                give_up(org_id, kb_id, doc_id, "The document could not be processed; add it again.")
                done["failed"] += 1
            else:
                ingest_store.enqueue(org_id, kb_id, doc_id)
                done["requeued"] += 1
        except ServiceUnavailable as exc:
            logger.warning("ai_ingest.requeue_failed", extra={"doc_id": doc_id, "error": exc.message[:300]})
    return done


def _ingest(doc: kb_store.StoredDocument, key: str, time_left: Callable[[], float] | None) -> str:
    org_id, kb_id, doc_id = doc.org_id, doc.kb_id, doc.id
    _check_embedding(kb_id, kb_store.get_base(org_id, kb_id))
    content = ingest_store.read_source(key)
    if content is None:
        raise ValidationFailed("The document's content is no longer stored; add it again.")
    chunks = _chunks(content, doc.content_type)
    done = kb_store.chunk_ordinals(org_id, kb_id, doc_id)  # what an earlier attempt already wrote
    todo = [c for c in chunks if c.ordinal not in done]
    settings = ai_settings()
    step = settings.ingest_batch_chunks
    for start in range(0, len(todo), step):
        if time_left is not None and time_left() < settings.ingest_reserve_s:
            raise ServiceUnavailable("The document is not finished within this run; the next one resumes it.")
        batch = todo[start : start + step]
        kb_store.upsert_chunks(_rows(doc, batch, _embed_chunks(batch), pending=True))
        kb_store.set_progress(org_id, doc_id, len(chunks) - len(todo) + start + len(batch), len(chunks))
    outcome = kb_store.finish_document(org_id, kb_id, doc_id, len(chunks))
    if outcome == "done" and kb_store.find_document(org_id, kb_id, doc_id) is None:
        kb_store.discard_document(org_id, doc_id)  # deleted while this attempt was writing its chunks
        return "gone"
    return outcome


def queued_response(model: Any, poll: str) -> dict[int, dict[str, Any]]:
    """OpenAPI of the 202 a route answers when it queued the document (`model` in the envelope)."""
    from verriflo.api import JSON, Envelope

    return {
        202: {
            "description": "Queued: `status` is `processing` until it is `ready` (or `failed`, with "
            f"`error`); poll {poll}",
            "content": {JSON: {"model": Envelope[model]}},
        }
    }


def get_document(org_id: str, kb_id: str, doc_id: str) -> Document:
    """One document of one of the org's bases, with its status (NotFound for any other)."""
    kb_store.get_base(org_id, kb_id)
    return _document(kb_store.get_document(org_id, kb_id, doc_id))


def list_documents(org_id: str, kb_id: str, limit: int = 200) -> DocumentList:
    """A knowledge base's documents (NotFound for another org's base)."""
    kb_store.get_base(org_id, kb_id)
    return DocumentList(documents=[_document(d) for d in kb_store.list_documents(org_id, kb_id, limit)])


def delete_document(org_id: str, kb_id: str, doc_id: str) -> None:
    """Delete one document and its passages."""
    kb_store.delete_document(org_id, kb_id, doc_id)


# --- search ---------------------------------------------------------------------------------------


@dataclass
class _Index:
    version: int
    matrix: np.ndarray
    meta: list[tuple[str, int, str, str, int | None]]  # (docId, ordinal, title, text, page)


class _IndexCache:
    """A bounded LRU of per-base matrices, keyed by (org, base) and checked against the version."""

    def __init__(self) -> None:
        self._entries: OrderedDict[tuple[str, str], _Index] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, org_id: str, kb_id: str, version: int) -> _Index:
        key = (org_id, kb_id)
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and hit.version == version:
                self._entries.move_to_end(key)
                return hit
        index = _load(org_id, kb_id, version)
        with self._lock:
            self._entries[key] = index
            self._entries.move_to_end(key)
            while len(self._entries) > ai_settings().index_cache_entries:
                self._entries.popitem(last=False)
        return index

    def forget(self, org_id: str, kb_id: str) -> None:
        with self._lock:
            self._entries.pop((org_id, kb_id), None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_index_cache = _IndexCache()


def clear_index_cache() -> None:
    """Forget every in-memory index (tests start on fresh databases)."""
    _index_cache.clear()


def _load(org_id: str, kb_id: str, version: int) -> _Index:
    import numpy as np

    meta, blobs = [], []
    for row in kb_store.iter_chunks(org_id, kb_id):
        if row.pending:
            continue  # a document still being ingested is not searchable yet
        meta.append((row.doc_id, row.ordinal, row.title, row.text, row.page))
        blobs.append(row.vector)
    matrix = (
        np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), -1)
        if blobs
        else np.zeros((0, DIMENSION), dtype=np.float32)
    )
    return _Index(version=version, matrix=matrix, meta=meta)


def search(
    org_id: str,
    kb_ids: list[str],
    query: str,
    top_k: int | None = None,
    min_score: float | None = None,
    query_vector: np.ndarray | None = None,
) -> list[Passage]:
    """The passages of the named bases most similar to `query`, best first, above the threshold.

    `query_vector`: the query's embedding when the caller already has it (saves embedding it twice).
    """
    import numpy as np

    settings = ai_settings()
    top_k = top_k or settings.top_k
    threshold = settings.min_score if min_score is None else min_score
    kb_ids = list(dict.fromkeys(kb_ids))
    if not kb_ids or not query.strip():
        return []
    current = check_bases(org_id, kb_ids)
    vector = _embed([query])[0] if query_vector is None else query_vector
    found: list[Passage] = []
    for kb_id in kb_ids:
        index = _index_cache.get(org_id, kb_id, current[kb_id])
        if not len(index.meta):
            continue
        scores = index.matrix @ vector
        k = min(top_k, len(scores))
        best = np.argpartition(-scores, k - 1)[:k]
        for i in best:
            if scores[i] >= threshold:
                doc_id, ordinal, title, text, page = index.meta[int(i)]
                found.append(
                    Passage(
                        text=text,
                        score=float(scores[i]),
                        knowledge_base_id=kb_id,
                        document_id=doc_id,
                        title=title,
                        chunk=ordinal,
                        page=page,
                    )
                )
    # The bases' videos: the moments of their transcripts, cited with `videoId`, `startS`, `endS`.
    from verriflo_ai import video_search

    found.extend(video_search.base_passages(org_id, kb_ids, query, vector, top_k, threshold))
    found.sort(key=lambda p: p.score, reverse=True)
    return found[:top_k]
