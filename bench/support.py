"""Benchmark helpers: real local servers, timing, percentiles, and one way to print results.

Every benchmark measures our code beside a baseline taken in the same run on the same machine
(the bare driver calls our code makes, bare ffmpeg, ...), and prints both figures and their ratio:
absolute numbers on a shared 2-core machine drift, ratios measured side by side do not.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Benchmarks run as scripts; make the project's packages importable the way pytest's pythonpath does.
for extra in [ROOT / "tests", ROOT / "layers" / "common", *sorted((ROOT / "functions").glob("*"))]:
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

from servers import Server, start_mongo, start_redis  # noqa: E402


def _tests_support():
    # tests/support.py shares this module's name; load it under another so benchmarks reuse its helpers.
    import importlib.util

    spec = importlib.util.spec_from_file_location("tests_support", ROOT / "tests" / "support.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["tests_support"] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


LambdaContext = _tests_support().LambdaContext


def percentile(samples: list[float], q: float) -> float:
    """The q-th percentile (0-100) of samples, by linear interpolation."""
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    pos = (len(ordered) - 1) * q / 100
    low, high = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def time_calls(fn: Callable[[], object], n: int, warmup: int = 20) -> list[float]:
    """Run fn n times after a warm-up; return each call's duration in milliseconds."""
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


@dataclass
class Result:
    """One line of a benchmark report."""

    name: str
    value: float
    unit: str
    baseline: float | None = None
    target: str = ""
    ok: bool | None = None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline in (None, 0):
            return None
        return self.value / self.baseline


@dataclass
class Report:
    """A titled list of results, printed as a table."""

    title: str
    results: list[Result] = field(default_factory=list)

    def add(self, *results: Result) -> None:
        self.results.extend(results)

    def print(self) -> None:
        print(f"\n== {self.title} ==")
        print(f"{'measure':<52} {'value':>12} {'baseline':>12} {'ratio':>7}  {'target':<22} ok")
        for r in self.results:
            base = f"{r.baseline:.3f}" if r.baseline is not None else "-"
            ratio = f"{r.ratio:.2f}" if r.ratio is not None else "-"
            ok = {True: "yes", False: "NO", None: ""}[r.ok]
            print(
                f"{r.name:<52} {r.value:>9.3f} {r.unit:<2} {base:>12} {ratio:>7}  {r.target:<22} {ok}"
                + (f"  ({r.note})" if r.note else "")
            )
        sys.stdout.flush()


@contextmanager
def local_stores() -> Iterator[tuple[Server, Server]]:
    """A real MongoDB-wire server and Redis for the duration of a benchmark, with the env set."""
    with tempfile.TemporaryDirectory(prefix="verriflo-bench-") as tmp:
        mongo = start_mongo(Path(tmp) / "mongo")
        redis = start_redis(Path(tmp) / "redis")
        os.environ.update(MONGODB_URI=mongo.url, REDIS_URL=redis.url, MONGODB_DATABASE="bench")
        try:
            yield mongo, redis
        finally:
            mongo.stop()
            redis.stop()
