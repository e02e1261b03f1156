"""LocalStack's memory for Lambda's logs, with and without the cap (localstack/verriflo_localstack/
lambda_logs.py), in seconds instead of the soak's hour.

In LocalStack's own interpreter (`.venv-localstack`), with the patches LocalStack applies at start
(moto's instance tracking off, its own `put_log_events`): writes what `--invocations` Lambda
invocations ship to CloudWatch Logs (START, one structured log line as our functions write, END,
REPORT) into moto's store, spread over five functions, and reports the process's RSS growth at the
end and at each fifth of the way. Baseline in the same run: the same writes with the cap off
(`VERRIFLO_LOCALSTACK_LAMBDA_LOG_EVENTS=0`, what LocalStack does by itself). No server, no network.

Run: `.venv/bin/python bench/bench_localstack_logs.py [--invocations N]` (default 60,000: about
the 30,000 API requests of the soak, an authorizer and a function each).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from support import ROOT, Report, Result

PYTHON = ROOT / ".venv-localstack" / "bin" / "python"

_WRITER = r"""
import json, sys, time, uuid

sys.path.insert(0, sys.argv[2])
from localstack.aws.patches import patch_moto_instance_tracker_meta

patch_moto_instance_tracker_meta()  # as LocalStack does at start (on_infra_start)
from localstack.services.logs import provider  # noqa: F401 - LocalStack's put_log_events
from moto.logs.models import logs_backends
from verriflo_localstack import lambda_logs

lambda_logs.install()
n = int(sys.argv[1])


def rss_mb():
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


backend = logs_backends["000000000000"]["us-east-1"]
groups = [f"/aws/lambda/verriflo-{f}" for f in ("authorizer", "identity", "billing", "cdn", "health")]
stream = "2026/12/05/[$LATEST]0123456789abcdef"
for group in groups:
    backend.create_log_group(group, {})
    backend.create_log_stream(group, stream)
start, marks = rss_mb(), []
for i in range(n):
    rid, group = str(uuid.uuid4()), groups[i % len(groups)]
    line = json.dumps({
        "level": "INFO", "location": "handler:42", "message": "request.done",
        "timestamp": "2026-12-05 08:00:00,000+0000", "service": "verriflo", "cold_start": False,
        "function_name": group, "function_memory_size": 512, "function_request_id": rid,
        "org_id": "org_" + uuid.uuid4().hex[:24], "status": 200, "path": "/v1/auth/whoami",
    })
    lines = [
        f"START RequestId: {rid} Version: $LATEST", line, f"END RequestId: {rid}",
        f"REPORT RequestId: {rid}\tDuration: 12.34 ms\tBilled Duration: 13 ms\tMemory Size: 512 MB",
    ]
    now = int(time.time() * 1000)
    backend.put_log_events(group, stream, [{"timestamp": now, "message": m + "\n"} for m in lines])
    if (i + 1) % max(n // 5, 1) == 0:
        marks.append(rss_mb() - start)
held = sum(lambda_logs.held(backend.groups[g]) for g in groups)
print(json.dumps({"growth_mb": rss_mb() - start, "marks": marks, "events": held}))
"""


def _run(cap: int, invocations: int) -> dict:
    env = {**os.environ, "VERRIFLO_LOCALSTACK_LAMBDA_LOG_EVENTS": str(cap)}
    done = subprocess.run(  # noqa: S603 - fixed command
        [str(PYTHON), "-c", _WRITER, str(invocations), str(ROOT / "localstack")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=1800,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--invocations", type=int, default=60_000)
    parser.add_argument("--cap", type=int, default=2000, help="events kept per Lambda log group")
    args = parser.parse_args(argv)
    if not PYTHON.exists():
        print("no .venv-localstack here (make deps): skipped")
        return 0
    uncapped = _run(0, args.invocations)
    capped = _run(args.cap, args.invocations)
    fifths = ", ".join(f"{m:.0f}" for m in capped["marks"])
    report = Report(f"LocalStack: Lambda logs of {args.invocations} invocations in moto's store")
    report.add(
        Result(
            "RSS growth, capped",
            capped["growth_mb"],
            "MB",
            baseline=uncapped["growth_mb"],
            target="flat after the cap fills",
            ok=capped["marks"][-1] - capped["marks"][0] < 0.25 * uncapped["growth_mb"],
            note=f"at each fifth {fifths} MB; baseline: no cap",
        ),
        Result("events kept, capped", capped["events"], "", baseline=uncapped["events"]),
    )
    report.print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
