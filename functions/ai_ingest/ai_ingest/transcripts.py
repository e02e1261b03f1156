"""The video search indexer: `video.captions_ready` and `video.deleted` events (EventBridge rule ->
VideoIndexQueue -> here), one video each, brought in line with its current transcript
(`verriflo_ai.video_search.index_video`: indexed once per transcript version, removed when the
transcript or the video is gone).

Every step is safe to repeat: the event only names the video, and the indexer reads the transcript
as it is now, so a redelivered event, two events for one video or a retry after a failure at any
step leave one index of the latest transcript. A transient failure goes back to the queue
(ReportBatchItemFailures) and, after the queue's last receive, to its dead-letter queue.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import Field, ValidationError
from verriflo.models import ApiModel
from verriflo.observability import logger
from verriflo_ai import video_search

processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
EVENTS = ("video.captions_ready", "video.deleted")


class VideoEventData(ApiModel):
    """The part of the event's `data` the indexer reads."""

    video_id: str = Field(min_length=1, max_length=100)


class VideoEvent(ApiModel):
    """A domain event as published on the bus (the EventBridge `detail`)."""

    type: str
    org_id: str = Field(min_length=1, max_length=100)
    data: VideoEventData


class BusMessage(ApiModel):
    """What EventBridge puts on the queue: the event in `detail`."""

    detail: VideoEvent


def record_handler(record: SQSRecord) -> None:
    """Index (or remove) one video; raise to have the queue deliver the event again."""
    try:
        event = BusMessage.model_validate_json(record.body).detail
    except ValidationError:
        # No retry can make it readable (only the bus's rule sends here).
        logger.error("video_index.unreadable_message", extra={"message_id": record.message_id})
        return
    if event.type not in EVENTS:
        logger.warning("video_index.unexpected_event", extra={"event_type": event.type})
        return
    logger.append_keys(org_id=event.org_id, video_id=event.data.video_id)
    if event.type == "video.deleted":
        outcome = "removed" if video_search.remove_video(event.org_id, event.data.video_id) else "absent"
    else:
        outcome = video_search.index_video(event.org_id, event.data.video_id)
    logger.info("video_index.done", extra={"outcome": outcome, "event_type": event.type})


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Process a batch; the records that raised go back to the queue (and to its DLQ in the end)."""
    return process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
