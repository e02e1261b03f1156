"""A pytest plugin that runs every test in the last seconds of a month: `make test-calendar`.

No test may depend on the calendar or the time of day. This proves it for the unit and integration
suites: under libfaketime (Debian's `faketime`), before each test the clock of every process that
test touches (pytest, the MongoDB-wire server, FFmpeg, Chromium; not Redis, which cannot run under
libfaketime and keeps the real clock, as a managed Redis keeps its own) is set to a moment just
before a month ends, so the test, its fixtures and the servers cross midnight at the turn of a
month while it runs. Each test gets the next month (every twelfth is the turn of a year, and the
leap days come round), and a lead of a fraction of a second to a few seconds, so tests cross the
boundary at different points of their work. The clock only moves forward, as a real one does.

How the clock is set: libfaketime reads the fake time from `FAKETIME_TIMESTAMP_FILE` on every
clock call when `FAKETIME_NO_CACHE=1`; a `@<time>` written there restarts the clock at that time.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

# The first test runs before the turn of 2026 into 2027; each next test one month later.
FIRST_MONTH = (2026, 12)
LEADS_S = (0.3, 0.8, 1.5, 3.0)


def month_end(index: int) -> datetime:
    """The first instant after the month `index` months past FIRST_MONTH (its boundary)."""
    year, month = divmod(FIRST_MONTH[0] * 12 + FIRST_MONTH[1] - 1 + index + 1, 12)
    return datetime(year, month + 1, 1, tzinfo=UTC)


def _clock_file() -> Path:
    name = os.environ.get("FAKETIME_TIMESTAMP_FILE")
    if not name or "faketime" not in os.environ.get("LD_PRELOAD", ""):
        raise pytest.UsageError(
            "calendar_edge needs libfaketime: run it as `make test-calendar` "
            "(LD_PRELOAD=libfaketime, FAKETIME_TIMESTAMP_FILE, FAKETIME_NO_CACHE=1)"
        )
    return Path(name)


def set_clock(at: datetime) -> None:
    """Restart every faked process's clock at `at` (UTC)."""
    _clock_file().write_text(at.strftime("@%Y-%m-%d %H:%M:%S.%f") + "\n")


class CalendarEdge:
    def __init__(self) -> None:
        self.index = 0

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        # A run whose clock is not really faked would prove nothing: refuse it.
        probe = month_end(0) - timedelta(days=3)
        set_clock(probe)
        seen = datetime.now(UTC)
        if abs((seen - probe).total_seconds()) > 5:
            raise pytest.UsageError(f"the clock is not faked (set {probe}, read {seen})")

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        boundary = month_end(self.index)
        lead = LEADS_S[self.index % len(LEADS_S)]
        self.index += 1
        set_clock(boundary - timedelta(seconds=lead))
        item.user_properties.append(("clock_boundary", boundary.isoformat()))


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(CalendarEdge(), "calendar_edge_clock")
