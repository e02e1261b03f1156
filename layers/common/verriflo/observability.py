"""Powertools logger, tracer and metrics, created once for the whole process.

Powertools reads its own settings (POWERTOOLS_SERVICE_NAME, POWERTOOLS_METRICS_NAMESPACE,
POWERTOOLS_TRACE_DISABLED, POWERTOOLS_LOG_LEVEL), which the template sets per function.
The tracer is created on first use: it imports the X-Ray SDK and botocore (~200 ms), which would
otherwise double every cold start; with tracing disabled it is never imported at all.
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING

from aws_lambda_powertools import Logger, Metrics

if TYPE_CHECKING:
    from aws_lambda_powertools import Tracer

logger = Logger()
# Powertools reads the namespace from the environment here too; without one it refuses to flush, so
# fall back to ours rather than fail a request over metrics.
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "Verriflo")


def tracing_enabled() -> bool:
    """Whether X-Ray SDK tracing is on (Powertools' own switch, read when first needed)."""
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").lower() not in ("1", "true")


@cache
def tracer() -> Tracer:
    """The process-wide Powertools tracer."""
    from aws_lambda_powertools import Tracer

    return Tracer()
