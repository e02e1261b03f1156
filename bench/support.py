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
for extra in [ROOT / "tests", ROOT / "layers" / "common", ROOT / "tools", *sorted(ROOT.glob("functions/*"))]:
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


_tests = _tests_support()
LambdaContext = _tests.LambdaContext
# The tests' helper modules (media_support, ...) import these from `support`, which is this module
# when a benchmark runs: without them bench_soak and bench_cdn failed to import make_video.
EventTap, tap_events = _tests.EventTap, _tests.tap_events


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


def media_bench_env(**extra: str) -> None:
    """The environment of an in-process media benchmark: moto's fake credentials, quiet
    Powertools, the bench bus and buckets (plus `extra`), and no endpoint override."""
    os.environ.update(
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",  # noqa: S106 - moto's fake credentials
        POWERTOOLS_TRACE_DISABLED="true",
        POWERTOOLS_LOG_LEVEL="WARNING",
        POWERTOOLS_METRICS_DISABLED="true",
        EVENT_BUS_NAME="bench-events",
        UPLOADS_BUCKET="bench-uploads",
        MEDIA_BUCKET="bench-media",
        **extra,
    )
    os.environ.pop("AWS_ENDPOINT_URL", None)


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


def first_chunk_overhead(
    report: Report,
    *,
    app: object,
    logic_module: object,
    path: str,
    headers: dict[str, str],
    body_for: Callable[[int], dict],
    label: str,
    runs: int,
    first_token_s: float,
) -> None:
    """Time to the first streamed line through a real uvicorn, beside the provider's own first token.

    The function's provider is swapped for a scripted one that waits `first_token_s` before its
    first piece and notes when it was called, so overhead = (first line at the client) - (provider's
    first token), both measured in this process on the same clock.
    """
    import httpx
    from ai_support import ScriptedProvider
    from servers import asgi_server

    first_at, provider_at, overhead = [], [], []
    with asgi_server(app) as url:
        with httpx.Client(base_url=url, timeout=30) as client:
            for i in range(runs + 5):
                model = ScriptedProvider(pieces=["first ", "second ", "third."], delay_s=first_token_s)
                called: list[float] = []
                real_stream = model.stream

                def stream(request, _real=real_stream, _called=called):
                    _called.append(time.perf_counter())
                    yield from _real(request)

                model.stream = stream  # type: ignore[method-assign]
                logic_module.provider = lambda model=model: model  # type: ignore[attr-defined]
                start = time.perf_counter()
                with client.stream("POST", path, headers=headers, json=body_for(i)) as response:
                    assert response.status_code == 200, response.read()
                    lines = (line for line in response.iter_lines() if line)
                    next(lines)
                    first = time.perf_counter()
                    for _ in lines:
                        pass
                if i < 5:
                    continue  # warm-up (model load, indexes, connections)
                provider_ttft = model.first_token_at - called[0]
                first_at.append((first - start) * 1000)
                provider_at.append(provider_ttft * 1000)
                overhead.append((first - start - provider_ttft) * 1000)
    p50 = percentile(overhead, 50)
    report.add(
        Result(
            label,
            percentile(first_at, 50),
            "ms",
            baseline=percentile(provider_at, 50),
            note="baseline: provider's own first token",
        ),
        Result("overhead over the provider's first token p50", p50, "ms", target="<= 20 ms", ok=p50 <= 20),
        Result("overhead over the provider's first token p95", percentile(overhead, 95), "ms"),
    )
