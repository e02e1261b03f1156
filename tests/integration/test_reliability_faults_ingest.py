"""The fault-injection matrix (see test_reliability_faults.py) for queued knowledge-base documents
(AI API documents and tutor material): the route that stores and queues one, the worker, and the
ingestion sweep that picks up a document stalled in `processing`. Each step fails once or the
invocation dies right after it; then the client's retry, SQS's redelivery or the next sweep run.
Counted after: ready documents, the base's count, chunks, the stored source."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from ai_ingest import sweep as ingest_sweep
from ai_support import (
    ai_env,  # noqa: F401 - an autouse fixture
    ingest_queue,  # noqa: F401 - a fixture
    queued,
    work,
)
from fault_support import Faults, Killed, mongo_error, record, write_matrix
from verriflo import db
from verriflo.errors import ServiceUnavailable
from verriflo.orgs import now
from verriflo_ai import ingest_store, kb_store, knowledge
from verriflo_ai.settings import ai_settings

Steps = dict[str, tuple[Any, str, Any, bool]]
BUCKET = "verriflo-test-uploads"


@pytest.fixture(scope="module", autouse=True)
def matrix_report() -> Iterator[None]:
    yield
    write_matrix()


def queue_error() -> BaseException:
    return ServiceUnavailable("The ingestion queue is unavailable; retry shortly.")


def notes() -> bytes:
    """A document long enough for the queue (dozens of passages at the test's inline limit)."""
    paragraphs = [
        f"Lesson {n}. " + " ".join(f"The estuary's salinity changes with tide {n}.{i}." for i in range(40))
        for n in range(4)
    ]
    return "\n\n".join(paragraphs).encode()


def minutes_later() -> None:
    """Every processing document's last sign of life is hours old (as a sweep much later sees it)."""
    hours_ago = now() - timedelta(seconds=ai_settings().ingest_stall_s + 60)
    db.collection(kb_store.DOCUMENTS).update_many(
        {"status": "processing"}, {"$set": {"activeAt": hours_ago, "createdAt": hours_ago}}
    )


def sweep_and_work(lambda_context: Any, rounds: int = 3) -> None:
    """Scheduled sweeps, each followed by the worker taking what they queued."""
    for _ in range(rounds):
        if not db.collection(kb_store.DOCUMENTS).count_documents({"status": "processing"}):
            return
        minutes_later()
        try:
            ingest_sweep.handler({}, lambda_context)
        except ServiceUnavailable:
            continue  # the next scheduled sweep comes
        for delivery in queued():
            work(delivery, lambda_context)


def ingest_counts(org_id: str, kb_id: str) -> dict[str, Any]:
    docs = list(db.collection(kb_store.DOCUMENTS).find({"orgId": org_id}))
    base = db.collection(kb_store.BASES).find_one({"_id": kb_id}) or {}
    ready = [d for d in docs if d["status"] == "ready"]
    chunks = db.collection(kb_store.CHUNKS).count_documents({"orgId": org_id})
    return {
        "document ready": len(ready),
        "documents processing or failed (0)": int(len(docs) == len(ready)),
        "base counts it": int(base.get("documentCount", 0)),
        "chunks once": int(bool(ready) and chunks == ready[0]["chunkCount"] == base.get("chunkCount")),
        "source deleted": int(boto3.client("s3").list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0),
    }


@pytest.fixture
def base(org, aws_env, ingest_queue) -> str:  # noqa: F811 - the fixture imported above
    return knowledge.create_base(org.id, "Estuaries").knowledge_base_id


def route_steps() -> Steps:
    return {
        "s3.put_source": (ingest_store, "put_source", lambda: ServiceUnavailable("Storage is busy."), False),
        "mongo.insert_pending": (kb_store, "insert_pending_document", mongo_error, False),
        "sqs.enqueue": (ingest_store, "enqueue", queue_error, False),
        "lambda.killed_after_insert": (kb_store, "insert_pending_document", Killed, True),
        "lambda.killed_after_enqueue": (ingest_store, "enqueue", Killed, True),
    }


@pytest.mark.parametrize("step", list(route_steps()))
def test_adding_a_queued_document_survives_one_fault_at_any_step(
    org, base, lambda_context, monkeypatch, step
):
    faults = Faults(monkeypatch)
    faults.inject(step, route_steps(), "")
    try:
        knowledge.add_document(org.id, base, "Estuary notes", notes(), "text/markdown")
        first = "202"
    except ServiceUnavailable:
        first = "503"
        # nothing was left behind: the client adds it again
        assert not db.collection(kb_store.DOCUMENTS).count_documents({"orgId": org.id})
        assert (
            knowledge.add_document(org.id, base, "Estuary notes", notes(), "text/markdown").status
            == "processing"
        )
    except Killed:
        first = "killed"  # the client got no answer and does not retry: only the sweep is left
    for delivery in queued():
        work(delivery, lambda_context)
    sweep_and_work(lambda_context)
    recovery = "client retry, worker" if first == "503" else "worker, sweep"
    record(faults, "KB document: route -> queue", step, recovery, first, ingest_counts(org.id, base))


def worker_steps() -> Steps:
    return {
        "mongo.find_document": (kb_store, "find_document", mongo_error, False),
        "s3.read_source": (
            ingest_store,
            "read_source",
            lambda: ServiceUnavailable("Storage is busy."),
            False,
        ),
        "mongo.upsert_chunks": (kb_store, "upsert_chunks", mongo_error, False),
        "mongo.finish_document": (kb_store, "finish_document", mongo_error, False),
        "s3.delete_source": (
            ingest_store,
            "delete_source",
            lambda: ServiceUnavailable("Storage is busy."),
            False,
        ),
        "lambda.killed_after_chunks": (kb_store, "upsert_chunks", Killed, True),
        "lambda.killed_after_finish": (kb_store, "finish_document", Killed, True),
    }


@pytest.mark.parametrize(
    "step, receive",
    [
        *[(s, "first") for s in worker_steps()],
        # A transient error on the queue's last receive fails the document with its reason (by
        # design: the caller sees `failed`); a worker killed there runs no handler: only the sweep.
        *[(s, "last") for s in worker_steps() if s.startswith("lambda.")],
    ],
)
def test_the_ingestion_worker_survives_one_fault_at_any_step(
    org, base, lambda_context, monkeypatch, step, receive
):
    knowledge.add_document(org.id, base, "Estuary notes", notes(), "text/markdown")
    [delivery] = queued()
    if receive == "last":
        delivery.receives = ai_settings().ingest_max_receives
    faults = Faults(monkeypatch)
    faults.inject(step, worker_steps(), "")
    try:
        first = "ok" if work(delivery, lambda_context) else "failed"
    except Killed:
        first = "killed"
    if first != "ok" and receive == "first":
        delivery.receives += 1  # SQS delivers it again
        assert work(delivery, lambda_context)
    # on the last receive the message went to the dead-letter queue: only the sweep is left
    sweep_and_work(lambda_context)
    counts = ingest_counts(org.id, base)
    if (step, receive) == ("lambda.killed_after_finish", "last"):
        # Ready, and no attempt will come back to delete its bytes: the bucket's lifecycle rule on
        # documents/ (7 days, template.yaml) does.
        keys = boto3.client("s3").list_objects_v2(Bucket=BUCKET).get("Contents", [])
        del counts["source deleted"]
        counts["source left to the 7-day documents/ rule"] = int(
            [o["Key"] for o in keys] == [ingest_store.source_key(org.id, base, _only_doc(org.id))]
        )
    record(faults, f"KB document: worker ({receive} receive)", step, "redelivery, sweep", first, counts)


def _only_doc(org_id: str) -> str:
    (doc,) = db.collection(kb_store.DOCUMENTS).find({"orgId": org_id}, {"_id": 1})
    return doc["_id"]


def sweep_steps() -> Steps:
    return {
        "mongo.stalled_documents": (kb_store, "stalled_documents", mongo_error, False),
        "mongo.take_stalled": (kb_store, "take_stalled", mongo_error, False),
        "sqs.enqueue": (ingest_store, "enqueue", queue_error, False),
        "lambda.killed_after_take": (kb_store, "take_stalled", Killed, True),
        "lambda.killed_after_enqueue": (ingest_store, "enqueue", Killed, True),
    }


@pytest.mark.parametrize("step", list(sweep_steps()))
def test_the_ingestion_sweep_survives_one_fault_at_any_step(org, base, lambda_context, monkeypatch, step):
    knowledge.add_document(org.id, base, "Estuary notes", notes(), "text/markdown")
    queued()  # the message is lost (the worker died on its last receive)
    faults = Faults(monkeypatch)
    faults.inject(step, sweep_steps(), "")
    minutes_later()
    try:
        ingest_sweep.handler({}, lambda_context)
        first = "ok"
    except ServiceUnavailable:
        first = "error"
    except Killed:
        first = "killed"
    for delivery in queued():
        work(delivery, lambda_context)
    sweep_and_work(lambda_context)
    record(faults, "ingestion sweep", step, "next sweep", first, ingest_counts(org.id, base))


def test_a_document_that_keeps_dying_is_failed_with_a_reason_after_its_requeues(
    org, base, lambda_context, monkeypatch
):
    added = knowledge.add_document(org.id, base, "Estuary notes", notes(), "text/markdown")
    queued()
    monkeypatch.setattr(kb_store, "upsert_chunks", _die)
    requeues = ai_settings().ingest_max_requeues
    for _ in range(requeues):
        minutes_later()
        assert ingest_sweep.handler({}, lambda_context) == {"requeued": 1, "failed": 0}
        [delivery] = queued()
        with pytest.raises(Killed):
            work(delivery, lambda_context)
    assert ingest_sweep.handler({}, lambda_context) == {"requeued": 0, "failed": 0}  # not stalled yet
    minutes_later()
    assert ingest_sweep.handler({}, lambda_context) == {"requeued": 0, "failed": 1}
    doc = kb_store.find_document(org.id, base, added.document_id)
    assert doc is not None and doc.status == "failed" and "add it again" in (doc.error or "")
    assert queued() == [] and ingest_sweep.handler({}, lambda_context) == {"requeued": 0, "failed": 0}
    assert boto3.client("s3").list_objects_v2(Bucket=BUCKET).get("KeyCount", 0) == 0


def _die(*args: Any, **kwargs: Any) -> None:
    raise Killed()


def test_a_document_making_progress_is_not_taken_by_the_sweep(org, base, lambda_context):
    knowledge.add_document(org.id, base, "Estuary notes", notes(), "text/markdown")
    [delivery] = queued()
    assert ingest_sweep.handler({}, lambda_context) == {"requeued": 0, "failed": 0}
    assert queued() == []
    assert work(delivery, lambda_context)
    minutes_later()
    assert ingest_sweep.handler({}, lambda_context) == {"requeued": 0, "failed": 0}  # ready: not stalled
