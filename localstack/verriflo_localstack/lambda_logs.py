"""Bound what LocalStack keeps of Lambda's logs, so its memory stays flat under sustained use.

LocalStack ships every invocation's output (`START`/`END`/`REPORT` and what the function logged)
to CloudWatch Logs (`/aws/lambda/<function>`, `services/lambda_/invocation/logs.py`), and its
logs service is moto's, which keeps every event in memory for as long as the process runs: no
retention, no cap. Under a soak that was LocalStack's one growing allocation (tracemalloc, see
memtrace.py): RSS 440 -> 693 MB over 30,000 API requests, without end.

Installed with our executor plugin (before the first invocation): after each `PutLogEvents` into a
`/aws/lambda/` log group, once the group holds more than its cap plus a quarter, its oldest events
are dropped down to the cap (oldest stream first, by its first event), so the newest
`VERRIFLO_LOCALSTACK_LAMBDA_LOG_EVENTS` events of each function (default 2,000: a few hundred
invocations, plenty to read a function's recent logs with `aws logs`) are always there. `0` keeps
everything, as LocalStack does. Other log groups are left alone. Done by wrapping moto's
`LogStream.put_log_events` (after LocalStack's own replacement of it), not by editing
site-packages: LocalStack's venv is rebuilt from its pinned version.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from typing import Any

LOG = logging.getLogger(__name__)

LAMBDA_GROUPS = "/aws/lambda/"
DEFAULT_EVENTS = 2000
_installed = threading.Lock()
_trimming = threading.Lock()


def cap() -> int:
    """The number of events kept per Lambda log group (0: no cap)."""
    raw = os.environ.get("VERRIFLO_LOCALSTACK_LAMBDA_LOG_EVENTS", "").strip()
    try:
        return max(0, int(raw)) if raw else DEFAULT_EVENTS
    except ValueError:
        LOG.warning(
            "VERRIFLO_LOCALSTACK_LAMBDA_LOG_EVENTS=%r is not a number; keeping %d", raw, DEFAULT_EVENTS
        )
        return DEFAULT_EVENTS


def held(group: Any) -> int:
    """How many events a (moto) log group holds."""
    return sum(len(stream.events) for stream in list(group.streams.values()))


def trim(group: Any, keep: int) -> int:
    """Drop a log group's oldest events beyond `keep`, oldest stream first; returns how many."""
    streams = sorted(
        (s for s in list(group.streams.values()) if s.events), key=lambda s: s.events[0].ingestion_time
    )
    excess = sum(len(s.events) for s in streams) - keep
    dropped = 0
    for stream in streams:
        if excess <= 0:
            break
        count = min(excess, len(stream.events))
        gone = stream.events[:count]
        del stream.events[:count]
        stream.stored_bytes = max(0, stream.stored_bytes - sum(len(e.message) for e in gone))
        excess -= count
        dropped += count
    return dropped


def install() -> bool:
    """Bound the Lambda log groups from now on (once per process); True when a cap applies."""
    keep = cap()
    if keep == 0:
        return False
    with _installed:
        # LocalStack's logs provider replaces moto's put_log_events when it is imported: import it
        # first, so that this wraps LocalStack's version rather than being replaced by it.
        from localstack.services.logs import provider  # noqa: F401
        from moto.logs.models import LogStream

        original = LogStream.put_log_events
        if getattr(original, "__verriflo_bounded__", False):
            return True
        slack = max(1, keep // 4)  # trim now and then, not at every put (dropping shifts the list)

        # (not LocalStack's `patch` helper: it finds the class to patch from the function's name,
        # and LocalStack's replacement is a module-level function)
        @functools.wraps(original)
        def put_log_events(self, log_events):
            token = original(self, log_events)
            group = self.log_group
            if group.name.startswith(LAMBDA_GROUPS) and held(group) > keep + slack:
                with _trimming:
                    dropped = trim(group, keep)
                LOG.debug("Dropped the %d oldest events of %s", dropped, group.name)
            return token

        put_log_events.__verriflo_bounded__ = True
        LogStream.put_log_events = put_log_events
    return True
