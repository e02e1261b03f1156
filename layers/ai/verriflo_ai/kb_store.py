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
from typing import Any

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


def insert_base(doc: dict[str, Any]) -> None:
    """Store a new knowledge base."""
    with db.unavailable_on_failure():
        db.collection(BASES).insert_one(doc)


def get_base(org_id: str, kb_id: str) -> dict[str, Any]:
    """One of the org's knowledge bases, or NotFound."""
    with db.unavailable_on_failure():
        doc = db.collection(BASES).find_one({"_id": kb_id, "orgId": org_id})
    if doc is None:
        raise NotFound(f"Knowledge base '{kb_id}' was not found.")
    return doc


def bases(org_id: str, kb_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Version and embedding of each named base of the org; NotFound names the first missing one."""
    with db.unavailable_on_failure():
        found = {
            d["_id"]: d
            for d in db.collection(BASES).find(
                {"_id": {"$in": kb_ids}, "orgId": org_id},
                {"version": 1, "embeddingModel": 1, "embeddingDimension": 1},
            )
        }
    for kb_id in kb_ids:
        if kb_id not in found:
            raise NotFound(f"Knowledge base '{kb_id}' was not found.")
    return found


def versions(org_id: str, kb_ids: list[str]) -> dict[str, int]:
    """The current version of each named base of the org; NotFound names the first missing one."""
    return {kb_id: int(doc.get("version", 0)) for kb_id, doc in bases(org_id, kb_ids).items()}


def list_bases(org_id: str, limit: int) -> list[dict[str, Any]]:
    """The org's knowledge bases, newest first."""
    with db.unavailable_on_failure():
        return list(db.collection(BASES).find({"orgId": org_id}).sort("createdAt", -1).limit(limit))


def delete_base(org_id: str, kb_id: str) -> None:
    """Delete a base with its documents and chunks, or NotFound."""
    with db.unavailable_on_failure():
        result = db.collection(BASES).delete_one({"_id": kb_id, "orgId": org_id})
        if not result.deleted_count:
            raise NotFound(f"Knowledge base '{kb_id}' was not found.")
        db.collection(CHUNKS).delete_many({"orgId": org_id, "kbId": kb_id})
        db.collection(DOCUMENTS).delete_many({"orgId": org_id, "kbId": kb_id})


def _stored_chunks(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Chunks as MongoDB stores them: the raw float32 `vector` bytes as BSON binary."""
    from bson import Binary

    return [r | {"vector": Binary(r["vector"])} for r in rows]


def insert_document(doc: dict[str, Any], chunks: list[dict[str, Any]]) -> None:
    """Store a document and its chunks (`vector`: raw float32 bytes), then bump the base's version;
    nothing is left half-stored."""
    from pymongo.errors import PyMongoError

    chunks = _stored_chunks(chunks)
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


def insert_pending_document(doc: dict[str, Any]) -> None:
    """Store the record of a document the queue will ingest (`status: processing`, no chunks yet)."""
    with db.unavailable_on_failure():
        db.collection(DOCUMENTS).insert_one(doc)


def find_document(org_id: str, kb_id: str, doc_id: str) -> dict[str, Any] | None:
    """One document of the org's base, or None."""
    with db.unavailable_on_failure():
        return db.collection(DOCUMENTS).find_one({"_id": doc_id, "orgId": org_id, "kbId": kb_id})


def get_document(org_id: str, kb_id: str, doc_id: str) -> dict[str, Any]:
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


def upsert_chunks(rows: list[dict[str, Any]]) -> None:
    """Write chunks by id (`vector`: raw float32 bytes): the same chunk written twice (a redelivered
    message) is one row."""
    from pymongo import ReplaceOne

    if not rows:
        return
    rows = _stored_chunks(rows)
    with db.unavailable_on_failure():
        db.collection(CHUNKS).bulk_write(
            [ReplaceOne({"_id": r["_id"]}, r, upsert=True) for r in rows], ordered=False
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


def list_documents(org_id: str, kb_id: str, limit: int) -> list[dict[str, Any]]:
    """A base's documents, newest first."""
    with db.unavailable_on_failure():
        return list(
            db.collection(DOCUMENTS).find({"orgId": org_id, "kbId": kb_id}).sort("createdAt", -1).limit(limit)
        )


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


def iter_chunks(org_id: str, kb_id: str) -> Iterator[dict[str, Any]]:
    """Every chunk of a base with its vector (to build the in-memory index; skip `pending` ones)."""
    with db.unavailable_on_failure():
        yield from db.collection(CHUNKS).find(
            {"orgId": org_id, "kbId": kb_id},
            {"_id": 0, "docId": 1, "ordinal": 1, "text": 1, "title": 1, "vector": 1, "pending": 1},
            batch_size=2000,
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
