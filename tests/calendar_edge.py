"""A pytest plugin that runs every test in the last seconds of a month: `make test-calendar`.

No test may depend on the calendar or the time of day. This proves it for the unit and integration
suites: before each test the test process's wall clock (`time.time`, `datetime.now`, `date.today`
and the rest, in every thread, through `time-machine`) is set to a moment just before a month ends,
so the test and its fixtures cross midnight at the turn of a month while they run. Each test gets
the next month (every twelfth is the turn of a year, and leap days come round) and a lead of a
fraction of a second to a few seconds, so tests cross the boundary at different points of their
work. The clock ticks on from there and only moves forward, as a real one does.

The servers the tests start (the MongoDB-wire server, Redis, Chromium, FFmpeg) keep the machine's
clock, as managed services keep their own: our code stamps and compares times in the function.
(libfaketime would move their clocks too, but Redis cannot start under it and it breaks Python's
monotonic sleeps and socket deadlines.)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

# The first test runs before the turn of 2026 into 2027; each next test one month later.
FIRST_MONTH = (2026, 12)
LEADS_S = (0.3, 0.8, 1.5, 3.0)
# The months cycle within 40 years (every month and leap day comes round several times): MongoDB's
# ObjectIds hold their second as an unsigned 32-bit number, so no clock may pass 2106.
SPAN_MONTHS = 40 * 12


def month_end(index: int) -> datetime:
    """The first instant after the month `index` months past FIRST_MONTH (its boundary)."""
    year, month = divmod(FIRST_MONTH[0] * 12 + FIRST_MONTH[1] - 1 + index + 1, 12)
    return datetime(year, month + 1, 1, tzinfo=UTC)


class CalendarEdge:
    """Moves the clock before each test's set-up and gives the real one back after its teardown."""

    def __init__(self) -> None:
        self.index = 0
        self.travel: time_machine.travel | None = None

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item):  # noqa: ANN201 - a hook wrapper
        boundary = month_end(self.index % SPAN_MONTHS)
        start = boundary - timedelta(seconds=LEADS_S[self.index % len(LEADS_S)])
        self.index += 1
        self.travel = time_machine.travel(start, tick=True)
        self.travel.start()
        # A run whose clock did not move would prove nothing.
        seen = datetime.now(UTC)
        assert abs((seen - start).total_seconds()) < 1, f"the clock did not move (set {start}, read {seen})"
        item.user_properties.append(("clock_boundary", boundary.isoformat()))
        yield

    @pytest.hookimpl(hookwrapper=True, trylast=True)
    def pytest_runtest_teardown(self, item: pytest.Item, nextitem: pytest.Item | None):  # noqa: ANN201
        yield
        if self.travel is not None:
            self.travel.stop()
            self.travel = None


def pytest_configure(config: pytest.Config) -> None:
    config.pluginmanager.register(CalendarEdge(), "calendar_edge_clock")
