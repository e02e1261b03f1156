"""Foundation benchmarks: cold start of every function, and the warm overhead of our HTTP layer.

1. Cold start: a fresh interpreter imports a function's handler module; import + init is timed inside
   that process (median of 5), and the whole process, interpreter start included, is shown beside
   it with a bare interpreter start measured the same way. Target: import + init at most 200 ms.
2. Warm request: auth + middleware + rate limit + a route doing one MongoDB read, in-process through
   the Lambda handler, beside the bare pymongo read plus the same Redis rate-limit script call.
   Target: our own overhead at most 2 ms at p50.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time

from support import ROOT, Report, Result, local_stores, percentile, time_calls

COLD_RUNS = 5
WARM_CALLS = 2000


_TIMED_IMPORT = """
import time
start = time.perf_counter()
{statement}
print((time.perf_counter() - start) * 1000)
"""


def _cold_start(module: str, path: str) -> tuple[float, float]:
    """Median of COLD_RUNS fresh processes: (import + init of `module` timed inside the process,
    the whole process from spawn to exit, interpreter start included)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env.update(
        PYTHONPATH=f"{ROOT / 'layers' / 'common'}:{ROOT / 'layers' / 'ai'}:{path}",
        POWERTOOLS_TRACE_DISABLED="true",
        AWS_DEFAULT_REGION="us-east-1",
        PYTHONDONTWRITEBYTECODE="0",
    )
    code = _TIMED_IMPORT.format(statement=f"import {module}" if module else "pass")
    inside, whole = [], []
    for _ in range(COLD_RUNS + 1):  # the first run compiles bytecode; drop it
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True
        )
        whole.append((time.perf_counter() - start) * 1000)
        inside.append(float(out.stdout.strip()))
    return statistics.median(inside[1:]), statistics.median(whole[1:])


def cold_starts(report: Report) -> None:
    _, bare = _cold_start("", "")
    report.add(Result("interpreter start alone (python -c pass)", bare, "ms"))
    for handler in sorted((ROOT / "functions").glob("*/*/handler.py")):
        package = handler.parent.name
        init, whole = _cold_start(f"{package}.handler", str(handler.parent.parent))
        report.add(
            Result(
                f"cold start {package}: import + init",
                init,
                "ms",
                target="<= 200 ms",
                ok=init <= 200,
                note=f"whole process {whole:.0f} ms (interpreter {bare:.0f} ms)",
            )
        )


def warm_overhead(report: Report) -> None:
    with local_stores():
        os.environ.update(
            AWS_DEFAULT_REGION="us-east-1",
            POWERTOOLS_TRACE_DISABLED="true",
            POWERTOOLS_LOG_LEVEL="WARNING",
            RATE_LIMIT_DEFAULT="100000000",
        )
        from support_api import build_probe

        handler, event, context, org_id = build_probe()
        from verriflo import db, ratelimit
        from verriflo.auth import authenticate

        coll = db.collection("orgs")
        org = authenticate(event["headers"])

        def bare() -> None:
            coll.find_one({"_id": org_id})
            ratelimit.hit(org, "bench")

        def ours() -> None:
            result = handler(event, context)
            assert result["statusCode"] == 200, result

        # Interleave rounds so drift on a shared machine hits both sides alike.
        ours_samples: list[float] = []
        bare_samples: list[float] = []
        for _ in range(4):
            ours_samples += time_calls(ours, WARM_CALLS // 4, warmup=50)
            bare_samples += time_calls(bare, WARM_CALLS // 4, warmup=50)
    for q in (50, 99):
        o, b = percentile(ours_samples, q), percentile(bare_samples, q)
        report.add(Result(f"warm request p{q} (auth+middleware+1 read+rate limit)", o, "ms", baseline=b))
        report.add(
            Result(
                f"our overhead over bare calls at p{q}",
                o - b,
                "ms",
                target="<= 2 ms" if q == 50 else "",
                ok=(o - b) <= 2 if q == 50 else None,
            )
        )


def main() -> None:
    report = Report("foundation")
    cold_starts(report)
    warm_overhead(report)
    report.print()


if __name__ == "__main__":
    main()
