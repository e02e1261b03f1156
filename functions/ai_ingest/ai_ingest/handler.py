"""The ingestion worker: SQS messages `{orgId, kbId, docId}` from the ingestion queue, one document
each, read, chunked, embedded in batches and marked `ready` or `failed` (`verriflo_ai.knowledge`).

Every step is safe to repeat: a redelivered message, or a retry after a failure at any step, ends with
the document's chunks written once and the document counted in its base once. A transient failure
goes back to the queue (ReportBatchItemFailures); the last attempt the queue allows marks the
document `failed` instead, so no document stays `processing` once its message is in the DLQ.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import Field, ValidationError
from verriflo.models import ApiModel
from verriflo.observability import logger
from verriflo_ai import knowledge
from verriflo_ai.settings import ai_settings

# A failed record is reported back (batchItemFailures) rather than failing the invocation, even when it
# is the whole batch: the queue then retries that message alone.
processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)


class IngestMessage(ApiModel):
    """One queued document."""

    org_id: str = Field(min_length=1, max_length=100)
    kb_id: str = Field(min_length=1, max_length=100)
    doc_id: str = Field(min_length=1, max_length=100)


def record_handler(record: SQSRecord, lambda_context: Any) -> None:
    """Ingest one document; raise to have the queue deliver the message again."""
    try:
        message = IngestMessage.model_validate_json(record.body)
    except ValidationError:
        # No retry can make it readable: drop it (only our functions may send to this queue).
        logger.error("ai_ingest.unreadable_message", extra={"message_id": record.message_id})
        return
    logger.append_keys(org_id=message.org_id, kb_id=message.kb_id, doc_id=message.doc_id)
    receives = int(record.attributes.approximate_receive_count or 1)
    last = receives >= ai_settings().ingest_max_receives
    try:
        outcome = knowledge.ingest_queued(
            message.org_id,
            message.kb_id,
            message.doc_id,
            last_attempt=last,
            time_left=lambda: lambda_context.get_remaining_time_in_millis() / 1000,
        )
    except Exception:
        if not last:
            raise
        # The queue will not deliver it again: the document must not stay `processing` for ever.
        logger.exception("ai_ingest.gave_up", extra={"receives": receives})
        knowledge.give_up(
            message.org_id,
            message.kb_id,
            message.doc_id,
            "The document could not be processed; add it again.",
        )
        return
    logger.info("ai_ingest.done", extra={"outcome": outcome, "receives": receives})


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Process a batch; the records that raised go back to the queue (and to its DLQ in the end)."""
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
