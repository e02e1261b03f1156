"""The queue's side of document ingestion: the raw document in S3 (an org-scoped key) and the message
that names it on the ingestion queue (SQS). The one module of the AI package that calls S3 and SQS
for documents; driver errors become domain errors here."""

from __future__ import annotations

import json

from verriflo import aws
from verriflo.errors import NotFound, ServiceUnavailable
from verriflo.objects import s3_errors

from verriflo_ai.settings import ai_settings


def source_key(org_id: str, kb_id: str, doc_id: str) -> str:
    """Where a queued document's bytes wait for the worker (outside the transcoder's `org_*` prefix)."""
    return f"documents/{org_id}/{kb_id}/{doc_id}"


def _unconfigured(setting: str) -> ServiceUnavailable:
    return ServiceUnavailable(
        f"Large documents are ingested through a queue this deployment does not have ({setting})."
    )


def _bucket() -> str:
    bucket = ai_settings().document_bucket
    if not bucket:
        raise _unconfigured("AI_DOCUMENT_BUCKET")
    return bucket


def _queue() -> str:
    # Only the routes that enqueue need it; the worker, which only reads and deletes, is not given it.
    queue = ai_settings().ingest_queue_url
    if not queue:
        raise _unconfigured("AI_INGEST_QUEUE_URL")
    return queue


def put_source(key: str, content: bytes, content_type: str) -> None:
    """Store a document's bytes for the worker."""
    bucket = _bucket()
    with s3_errors():
        aws.client("s3").put_object(Bucket=bucket, Key=key, Body=content, ContentType=content_type)


def read_source(key: str) -> bytes | None:
    """A queued document's bytes, or None when they are gone."""
    bucket = _bucket()
    try:
        with s3_errors():
            return aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    except NotFound:
        return None


def delete_source(key: str) -> None:
    """Drop a document's bytes once it is ingested, failed or deleted (deleting twice is fine)."""
    bucket = _bucket()
    with s3_errors():
        aws.client("s3").delete_object(Bucket=bucket, Key=key)


def enqueue(org_id: str, kb_id: str, doc_id: str) -> None:
    """Ask the ingestion worker to read, chunk and embed one document."""
    from botocore.exceptions import BotoCoreError, ClientError

    queue = _queue()
    body = json.dumps({"orgId": org_id, "kbId": kb_id, "docId": doc_id}, separators=(",", ":"))
    try:
        aws.client("sqs").send_message(QueueUrl=queue, MessageBody=body)
    except (BotoCoreError, ClientError) as exc:
        raise ServiceUnavailable("The ingestion queue is unavailable; retry shortly.") from exc
