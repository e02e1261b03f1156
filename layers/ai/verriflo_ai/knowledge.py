"""Knowledge bases: ingest documents (extract, chunk, embed, store) and search them.

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
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import Field
from verriflo.errors import Conflict, PayloadTooLarge, UpstreamError, ValidationFailed
from verriflo.models import ApiModel

from verriflo_ai import kb_store
from verriflo_ai.documents import chunk_text, extract_text
from verriflo_ai.embeddings import DIMENSION, MODEL_ID, embedder
from verriflo_ai.providers import Passage, ProviderError
from verriflo_ai.settings import ai_settings

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
    chunk_count: int
    created_at: datetime


class KnowledgeBaseList(ApiModel):
    """The org's knowledge bases."""

    knowledge_bases: list[KnowledgeBase] = Field(default_factory=list)


class DocumentList(ApiModel):
    """A knowledge base's documents."""

    documents: list[Document] = Field(default_factory=list)


def _base(doc: dict[str, Any]) -> KnowledgeBase:
    return KnowledgeBase(
        knowledge_base_id=doc["_id"],
        name=doc["name"],
        description=doc.get("description", ""),
        document_count=doc.get("documentCount", 0),
        chunk_count=doc.get("chunkCount", 0),
        embedding_model=_built_with(doc)[0],
        embedding_dimension=_built_with(doc)[1],
        created_at=doc["createdAt"],
    )


def _built_with(doc: dict[str, Any]) -> tuple[str, int]:
    # Bases from before the choice existed were all built with the local model.
    return str(doc.get("embeddingModel", MODEL_ID)), int(doc.get("embeddingDimension", DIMENSION))


def _check_embedding(kb_id: str, doc: dict[str, Any]) -> None:
    """Conflict when the base was built with another embedding than the one configured now: its
    vectors and the new ones would not be comparable (different spaces, maybe different lengths)."""
    model, dimension = _built_with(doc)
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
    return {kb_id: int(doc.get("version", 0)) for kb_id, doc in found.items()}


def _embed(texts: list[str]) -> np.ndarray:
    try:
        return embedder().embed(texts)
    except ProviderError as exc:
        raise UpstreamError(str(exc)) from exc


def _document(doc: dict[str, Any]) -> Document:
    return Document(
        document_id=doc["_id"],
        knowledge_base_id=doc["kbId"],
        title=doc["title"],
        content_type=doc["contentType"],
        size_bytes=doc["sizeBytes"],
        chunk_count=doc["chunkCount"],
        created_at=doc["createdAt"],
    )


def create_base(org_id: str, name: str, description: str = "") -> KnowledgeBase:
    """A new, empty knowledge base."""
    doc = {
        "_id": f"kb_{uuid.uuid4().hex}",
        "orgId": org_id,
        "name": name,
        "description": description,
        "version": 0,
        "documentCount": 0,
        "chunkCount": 0,
        "embeddingModel": embedder().model_id,
        "embeddingDimension": embedder().dimension,
        "createdAt": kb_store.now(),
    }
    kb_store.insert_base(doc)
    return _base(doc)


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


def add_document(org_id: str, kb_id: str, title: str, content: bytes, content_type: str) -> Document:
    """Extract, chunk, embed and store one document."""
    settings = ai_settings()
    if len(content) > settings.max_document_bytes:
        raise PayloadTooLarge(f"Documents are limited to {settings.max_document_bytes} bytes.")
    # 404 before any work on another org's base, 409 before embedding with another model than its own
    _check_embedding(kb_id, kb_store.get_base(org_id, kb_id))
    text = extract_text(content, content_type)
    chunks = chunk_text(text, settings.chunk_words, settings.chunk_overlap_words)
    if not chunks:
        raise ValidationFailed("The document contains no text.")
    # The section title travels with the passage into the embedding, so headings help retrieval.
    vectors = _embed([f"{c.section}\n{c.text}" if c.section else c.text for c in chunks])
    doc_id = f"doc_{uuid.uuid4().hex}"
    created = kb_store.now()
    from bson import Binary

    rows = [
        {
            "_id": f"{doc_id}:{c.ordinal}",
            "orgId": org_id,
            "kbId": kb_id,
            "docId": doc_id,
            "ordinal": c.ordinal,
            "text": c.text,
            "title": f"{title} > {c.section}" if c.section else title,
            "vector": Binary(vectors[i].tobytes()),
            "model": embedder().model_id,
        }
        for i, c in enumerate(chunks)
    ]
    doc = {
        "_id": doc_id,
        "orgId": org_id,
        "kbId": kb_id,
        "title": title,
        "contentType": content_type,
        "sizeBytes": len(content),
        "chunkCount": len(rows),
        "createdAt": created,
    }
    kb_store.insert_document(doc, rows)
    return _document(doc)


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
    meta: list[tuple[str, int, str, str]]  # (docId, ordinal, title, text)


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
        meta.append((row["docId"], row["ordinal"], row["title"], row["text"]))
        blobs.append(bytes(row["vector"]))
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
                doc_id, ordinal, title, text = index.meta[int(i)]
                found.append(
                    Passage(
                        text=text,
                        score=float(scores[i]),
                        knowledge_base_id=kb_id,
                        document_id=doc_id,
                        title=title,
                        chunk=ordinal,
                    )
                )
    found.sort(key=lambda p: p.score, reverse=True)
    return found[:top_k]
