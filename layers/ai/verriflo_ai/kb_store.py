"""Knowledge bases in MongoDB: bases, their documents, and the chunks with their vectors.

Every query filters by `orgId`, so another org's ids are simply not found. Each base carries a
`version` that every document change increments: in-memory search indexes compare it to know
when to reload. Vectors are stored as float32 bytes (BSON binary), 1.5 KB per chunk.

A document ingested by the queue (`status: processing`) gets its chunks in batches, each marked
`pending` (never searched) and written by id (`<docId>:<ordinal>`), so a retry rewrites the same rows
instead of adding more; `finish_document` then makes them searchable and counts the document in its
base, once, in one transaction.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from verriflo import db
from verriflo.errors import NotFound

BASES, DOCUMENTS, CHUNKS = "knowledge_bases", "kb_documents", "kb_chunks"


def _indexes_bases():
    from pymongo import ASCENDING, DESCENDING, IndexModel

    return [IndexModel([("orgId", ASCENDING), ("createdAt", DESCENDING)])]


def _indexes_documents():
    from pymongo import ASCENDING, DESCENDING, IndexModel

    return [IndexModel([("orgId", ASCENDING), ("kbId", ASCENDING), ("createdAt", DESCENDING)])]


def _indexes_chunks():
    from pymongo import ASCENDING, IndexModel

    return [IndexModel([("orgId", ASCENDING), ("kbId", ASCENDING), ("docId", ASCENDING)])]


db.register_indexes(BASES, _indexes_bases)
db.register_indexes(DOCUMENTS, _indexes_documents)
db.register_indexes(CHUNKS, _indexes_chunks)
db.register_indexes(DOCUMENTS, lambda: _stall_indexes())


def _stall_indexes():
    from pymongo import ASCENDING, IndexModel

    return [IndexModel([("status", ASCENDING), ("activeAt", ASCENDING)])]


# --- records: what this module takes and returns (never driver types) --------------------------------


@dataclass(frozen=True, slots=True)
class Base:
    """A knowledge base as stored (`embedding_*` None: built before the choice existed)."""

    id: str
    org_id: str
    name: str
    created_at: datetime
    description: str = ""
    version: int = 0
    document_count: int = 0
    chunk_count: int = 0
    embedding_model: str | None = None
    embedding_dimension: int | None = None

    def to_doc(self) -> dict[str, Any]:
        """The stored document."""
        doc = {
            "_id": self.id,
            "orgId": self.org_id,
            "name": self.name,
            "description": self.description,
            "version": self.version,
            "documentCount": self.document_count,
            "chunkCount": self.chunk_count,
            "createdAt": self.created_at,
        }
        if self.embedding_model is not None:
            doc |= {"embeddingModel": self.embedding_model, "embeddingDimension": self.embedding_dimension}
        return doc


def _base(doc: dict[str, Any]) -> Base:
    dimension = doc.get("embeddingDimension")
    return Base(
        id=doc["_id"],
        org_id=doc["orgId"],
        name=doc.get("name", ""),
        created_at=doc["createdAt"],
        description=doc.get("description", ""),
        version=int(doc.get("version", 0)),
        document_count=int(doc.get("documentCount", 0)),
        chunk_count=int(doc.get("chunkCount", 0)),
        embedding_model=doc.get("embeddingModel"),
        embedding_dimension=int(dimension) if dimension is not None else None,
    )


DocumentStatus = Literal["processing", "ready", "failed"]


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """A document of a base as stored (`source_key`: where a queued one's bytes wait)."""

    id: str
    org_id: str
    kb_id: str
    title: str
    content_type: str
    size_bytes: int
    created_at: datetime
    status: DocumentStatus = "ready"
    chunk_count: int = 0
    embedded_chunks: int = 0
    error: str | None = None
    source_key: str | None = None

    def to_doc(self) -> dict[str, Any]:
        """The stored document."""
        doc: dict[str, Any] = {
            "_id": self.id,
            "orgId": self.org_id,
            "kbId": self.kb_id,
            "title": self.title,
            "contentType": self.content_type,
            "sizeBytes": self.size_bytes,
            "createdAt": self.created_at,
            "status": self.status,
            "chunkCount": self.chunk_count,
        }
        if self.status == "processing":
            doc |= {"embeddedChunks": self.embedded_chunks, "sourceKey": self.source_key}
        if self.error is not None:
            doc["error"] = self.error
        return doc


def _document(doc: dict[str, Any]) -> StoredDocument:
    return StoredDocument(
        id=doc["_id"],
        org_id=doc["orgId"],
        kb_id=doc["kbId"],
        title=doc["title"],
        content_type=doc["contentType"],
        size_bytes=int(doc["sizeBytes"]),
        created_at=doc["createdAt"],
        status=doc.get("status", "ready"),
        chunk_count=int(doc.get("chunkCount", 0)),
        embedded_chunks=int(doc.get("embeddedChunks", 0)),
        error=doc.get("error"),
        source_key=doc.get("sourceKey"),
    )


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """A passage with its vector (raw float32 bytes), written by id `<docId>:<ordinal>`; `pending`
    while its document is being ingested (never searched)."""

    org_id: str
    kb_id: str
    doc_id: str
    ordinal: int
    text: str
    title: str
    vector: bytes
    page: int | None = None
    model: str = ""
    pending: bool = False

    @property
    def id(self) -> str:
        """Its id: the document and the passage, so writing it again is one row."""
        return f"{self.doc_id}:{self.ordinal}"

    def to_doc(self) -> dict[str, Any]:
        """The stored document (the vector as BSON binary)."""
        from bson import Binary

        doc = {
            "_id": self.id,
            "orgId": self.org_id,
            "kbId": self.kb_id,
            "docId": self.doc_id,
            "ordinal": self.ordinal,
            "text": self.text,
            "title": self.title,
            "page": self.page,
            "vector": Binary(self.vector),
            "model": self.model,
        }
        if self.pending:
            doc["pending"] = True
        return doc


@dataclass(frozen=True, slots=True)
class IndexedChunk:
    """A chunk as a search index loads it."""

    doc_id: str
    ordinal: int
    title: str
    text: str
    vector: bytes
    page: int | None = None
    pending: bool = False


def insert_base(base: Base) -> None:
    """Store a new knowledge base."""
    with db.unavailable_on_failure():
        db.collection(BASES).insert_one(base.to_doc())


def get_base(org_id: str, kb_id: str) -> Base:
    """One of the org's knowledge bases, or NotFound."""
    with db.unavailable_on_failure():
        doc = db.collection(BASES).find_one({"_id": kb_id, "orgId": org_id})
    if doc is None:
        raise NotFound(f"Knowledge base '{kb_id}' was not found.")
    return _base(doc)


def bases(org_id: str, kb_ids: list[str]) -> dict[str, Base]:
    """Each named base of the org (its version and embedding); NotFound names the first missing one."""
    with db.unavailable_on_failure():
        found = {
            d["_id"]: _base(d) for d in db.collection(BASES).find({"_id": {"$in": kb_ids}, "orgId": org_id})
        }
    for kb_id in kb_ids:
        if kb_id not in found:
            raise NotFound(f"Knowledge base '{kb_id}' was not found.")
    return found


def versions(org_id: str, kb_ids: list[str]) -> dict[str, int]:
    """The current version of each named base of the org; NotFound names the first missing one."""
    return {kb_id: base.version for kb_id, base in bases(org_id, kb_ids).items()}


def list_bases(org_id: str, limit: int) -> list[Base]:
    """The org's knowledge bases, newest first."""
    with db.unavailable_on_failure():
        return [
            _base(d) for d in db.collection(BASES).find({"orgId": org_id}).sort("createdAt", -1).limit(limit)
        ]


def delete_base(org_id: str, kb_id: str) -> None:
    """Delete a base with its documents and chunks, or NotFound."""
    with db.unavailable_on_failure():
        result = db.collection(BASES).delete_one({"_id": kb_id, "orgId": org_id})
        if not result.deleted_count:
            raise NotFound(f"Knowledge base '{kb_id}' was not found.")
        db.collection(CHUNKS).delete_many({"orgId": org_id, "kbId": kb_id})
        db.collection(DOCUMENTS).delete_many({"orgId": org_id, "kbId": kb_id})


def insert_document(document: StoredDocument, rows: list[StoredChunk]) -> None:
    """Store a document and its chunks, then bump the base's version; nothing is left half-stored."""
    from pymongo.errors import PyMongoError

    doc = document.to_doc()
    chunks = [row.to_doc() for row in rows]
    with db.unavailable_on_failure():
        try:
            for start in range(0, len(chunks), 500):
                db.collection(CHUNKS).insert_many(chunks[start : start + 500], ordered=False)
            db.collection(DOCUMENTS).insert_one(doc)
        except PyMongoError:
            db.collection(CHUNKS).delete_many({"orgId": doc["orgId"], "docId": doc["_id"]})
            raise
        bumped = db.collection(BASES).update_one(
            {"_id": doc["kbId"], "orgId": doc["orgId"]},
            {"$inc": {"version": 1, "documentCount": 1, "chunkCount": len(chunks)}},
        )
        if not bumped.matched_count:
            # The base was deleted while this document was being embedded.
            db.collection(CHUNKS).delete_many({"orgId": doc["orgId"], "docId": doc["_id"]})
            db.collection(DOCUMENTS).delete_one({"_id": doc["_id"]})
            raise NotFound(f"Knowledge base '{doc['kbId']}' was not found.")


def insert_pending_document(document: StoredDocument) -> None:
    """Store the record of a document the queue will ingest (`status: processing`, no chunks yet)."""
    with db.unavailable_on_failure():
        db.collection(DOCUMENTS).insert_one(document.to_doc())


def find_document(org_id: str, kb_id: str, doc_id: str) -> StoredDocument | None:
    """One document of the org's base, or None."""
    with db.unavailable_on_failure():
        doc = db.collection(DOCUMENTS).find_one({"_id": doc_id, "orgId": org_id, "kbId": kb_id})
    return _document(doc) if doc is not None else None


def get_document(org_id: str, kb_id: str, doc_id: str) -> StoredDocument:
    """One document of the org's base, or NotFound."""
    doc = find_document(org_id, kb_id, doc_id)
    if doc is None:
        raise NotFound(f"Document '{doc_id}' was not found.")
    return doc


def chunk_ordinals(org_id: str, kb_id: str, doc_id: str) -> set[int]:
    """The ordinals of the chunks a document already has (what an earlier attempt embedded)."""
    with db.unavailable_on_failure():
        rows = db.collection(CHUNKS).find({"orgId": org_id, "kbId": kb_id, "docId": doc_id}, {"ordinal": 1})
        return {int(r["ordinal"]) for r in rows}


def upsert_chunks(rows: list[StoredChunk]) -> None:
    """Write chunks by id: the same chunk written twice (a redelivered message) is one row."""
    from pymongo import ReplaceOne

    if not rows:
        return
    docs = [row.to_doc() for row in rows]
    with db.unavailable_on_failure():
        db.collection(CHUNKS).bulk_write(
            [ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in docs], ordered=False
        )


def set_progress(org_id: str, doc_id: str, embedded: int, total: int) -> None:
    """How many of a processing document's chunks are embedded so far."""
    with db.unavailable_on_failure():
        db.collection(DOCUMENTS).update_one(
            {"_id": doc_id, "orgId": org_id, "status": "processing"},
            {"$set": {"embeddedChunks": embedded, "chunkCount": total, "activeAt": now()}},
        )


class _BaseGone(Exception):
    """The base was deleted while its document was being ingested (the transaction is undone)."""


def finish_document(org_id: str, kb_id: str, doc_id: str, chunk_count: int) -> str:
    """Make a processing document's chunks searchable and count it in its base, once: `ready` when
    this call did it, `done` when an earlier one had (or the document is gone), `gone` when the base
    is (the document and its chunks are then removed)."""

    def work(session: Any) -> str:
        ready = db.collection(DOCUMENTS).find_one_and_update(
            {"_id": doc_id, "orgId": org_id, "kbId": kb_id, "status": "processing"},
            {
                "$set": {"status": "ready", "chunkCount": chunk_count, "embeddedChunks": chunk_count},
                "$unset": {"sourceKey": ""},
            },
            session=session,
        )
        if ready is None:
            return "done"
        db.collection(CHUNKS).update_many(
            {"orgId": org_id, "kbId": kb_id, "docId": doc_id}, {"$unset": {"pending": ""}}, session=session
        )
        bumped = db.collection(BASES).update_one(
            {"_id": kb_id, "orgId": org_id},
            {"$inc": {"version": 1, "documentCount": 1, "chunkCount": chunk_count}},
            session=session,
        )
        if not bumped.matched_count:
            raise _BaseGone
        return "ready"

    try:
        return db.in_transaction(work)
    except _BaseGone:
        discard_document(org_id, doc_id)
        return "gone"


def fail_document(org_id: str, doc_id: str, reason: str) -> None:
    """Mark a processing document failed, with the reason, and drop the chunks written so far."""
    with db.unavailable_on_failure():
        marked = db.collection(DOCUMENTS).update_one(
            {"_id": doc_id, "orgId": org_id, "status": "processing"},
            {"$set": {"status": "failed", "error": reason}, "$unset": {"sourceKey": ""}},
        )
        if marked.matched_count:  # a duplicate delivery may have finished it meanwhile: keep those
            db.collection(CHUNKS).delete_many({"orgId": org_id, "docId": doc_id})


def discard_document(org_id: str, doc_id: str) -> None:
    """Remove a document that was never counted in its base, and any chunks it has."""
    with db.unavailable_on_failure():
        db.collection(CHUNKS).delete_many({"orgId": org_id, "docId": doc_id})
        db.collection(DOCUMENTS).delete_one({"_id": doc_id, "orgId": org_id, "status": {"$ne": "ready"}})


def list_documents(org_id: str, kb_id: str, limit: int) -> list[StoredDocument]:
    """A base's documents, newest first."""
    with db.unavailable_on_failure():
        found = (
            db.collection(DOCUMENTS).find({"orgId": org_id, "kbId": kb_id}).sort("createdAt", -1).limit(limit)
        )
        return [_document(d) for d in found]


def delete_document(org_id: str, kb_id: str, doc_id: str) -> None:
    """Delete a document and its chunks, or NotFound."""
    with db.unavailable_on_failure():
        doc = db.collection(DOCUMENTS).find_one_and_delete({"_id": doc_id, "orgId": org_id, "kbId": kb_id})
        if doc is None:
            raise NotFound(f"Document '{doc_id}' was not found.")
        db.collection(CHUNKS).delete_many({"orgId": org_id, "docId": doc_id})
        # Only a ready document was counted in its base; one still processing or failed was not.
        counted = doc.get("status", "ready") == "ready"
        db.collection(BASES).update_one(
            {"_id": kb_id, "orgId": org_id},
            {
                "$inc": {
                    "version": 1,
                    "documentCount": -1 if counted else 0,
                    "chunkCount": -int(doc.get("chunkCount", 0)) if counted else 0,
                }
            },
        )


def iter_chunks(org_id: str, kb_id: str) -> Iterator[IndexedChunk]:
    """Every chunk of a base with its vector (to build the in-memory index; skip `pending` ones)."""
    with db.unavailable_on_failure():
        for row in db.collection(CHUNKS).find(
            {"orgId": org_id, "kbId": kb_id},
            {"_id": 0, "docId": 1, "ordinal": 1, "text": 1, "title": 1, "page": 1, "vector": 1, "pending": 1},
            batch_size=2000,
        ):
            yield IndexedChunk(
                doc_id=row["docId"],
                ordinal=int(row["ordinal"]),
                title=row["title"],
                text=row["text"],
                vector=bytes(row["vector"]),
                page=row.get("page"),
                pending=bool(row.get("pending")),
            )


def now() -> datetime:
    """The current time (UTC), as stored."""
    from verriflo.orgs import now as _now

    return _now()


# --- the ingestion sweep: documents stalled in `processing` -----------------------------------------


def _stalled(before: datetime) -> dict[str, Any]:
    # No sign of life since `before`: the last progress, or the sweep's last requeue, or (neither yet)
    # the document's creation.
    return {
        "status": "processing",
        "$or": [
            {"activeAt": {"$lte": before}},
            {"activeAt": None, "createdAt": {"$lte": before}},
        ],
    }


@dataclass(frozen=True, slots=True)
class StalledDocument:
    """A document stalled in `processing`, as the ingestion sweep needs it."""

    org_id: str
    kb_id: str
    doc_id: str
    requeues: int = 0


def _stalled_document(doc: dict[str, Any]) -> StalledDocument:
    return StalledDocument(
        org_id=doc["orgId"], kb_id=doc["kbId"], doc_id=doc["_id"], requeues=int(doc.get("requeues") or 0)
    )


def stalled_documents(before: datetime, limit: int = 100) -> list[StalledDocument]:
    """Processing documents (every org's) with no progress since `before`."""
    with db.unavailable_on_failure():
        found = db.collection(DOCUMENTS).find(_stalled(before), {"orgId": 1, "kbId": 1, "requeues": 1})
        return [_stalled_document(d) for d in found.limit(limit)]


def take_stalled(org_id: str, doc_id: str, before: datetime, at: datetime) -> StalledDocument | None:
    """Lease a stalled document for one requeue: its `activeAt` moves to `at` (so no sweep takes it
    again for another stall period) and `requeues` counts it; None if it moved on meanwhile."""
    from pymongo import ReturnDocument

    with db.unavailable_on_failure():
        taken = db.collection(DOCUMENTS).find_one_and_update(
            {"_id": doc_id, "orgId": org_id} | _stalled(before),
            {"$set": {"activeAt": at}, "$inc": {"requeues": 1}},
            {"orgId": 1, "kbId": 1, "requeues": 1},
            return_document=ReturnDocument.AFTER,
        )
    return _stalled_document(taken) if taken else None
