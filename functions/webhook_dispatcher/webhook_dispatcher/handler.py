"""The dispatcher's SQS entry point: each record is one event or one wake-up; failures are reported
per record (ReportBatchItemFailures), and records of one batch run concurrently."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from typing import Any

from aws_lambda_powertools.utilities.batch import (
    AsyncBatchProcessor,
    EventType,
    async_process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from verriflo.observability import logger
from verriflo.webhooks import webhook_settings

from webhook_dispatcher import logic

processor = AsyncBatchProcessor(event_type=EventType.SQS)


@cache
def _pool() -> ThreadPoolExecutor:
    # pymongo and the HTTP client are blocking; each record gets a thread of its own.
    return ThreadPoolExecutor(webhook_settings().concurrency, thread_name_prefix="delivery")


async def record_handler(record: SQSRecord) -> None:
    """Handle one SQS record in a worker thread."""
    await asyncio.get_running_loop().run_in_executor(_pool(), logic.handle_message, record.json_body)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Process a batch; the records that raised go back to the queue (and to its DLQ in the end)."""
    return async_process_partial_response(
        event=event, record_handler=record_handler, processor=processor, context=context
    )
