"""LocalStack's memory per Step Functions execution: how much of the soak's growth the class
summaries account for.

Every room lifecycle in the soak (bench/bench_soak.py) ends a class, and `room.finished` starts the
class-summary state machine. LocalStack keeps every execution for the life of the process (AWS keeps
them 90 days): its history, and the interpreter's environment it ran in. This bench brings up a
stack of its own (the e2e build, `sfn-<pid>`), runs `--executions` executions of the deployed
class-summary state machine (after a warm-up that starts its function) for rooms that do not exist,
so each takes the failure path (gather, record the failure; its history is the size of a real
summary's, 8.9 kB against 9.1 kB as JSON in the soak), waits until every one has ended, and
reports LocalStack's RSS growth per execution over the second half against a baseline from the
same executions: their histories as the Python objects LocalStack holds (bench/support_stack.py).

Run: `flock /tmp/verriflo-e2e.lock .venv/bin/python bench/bench_localstack_sfn.py [--executions N]`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

# isort: off
from support import Report, Result  # first: it puts tests/ (proc_support) on the path
from proc_support import stack_figures
from support_stack import aws_client, deployed, step_functions_kept
# isort: on

WARMUP = 50
WAIT_S = 600


def _summaries(env: dict[str, str], count: int, workers: int) -> list[str]:
    """Start `count` class summaries, as `room.finished` starts them, and wait until all have ended;
    their statuses."""
    sfn = aws_client(env, "stepfunctions")
    machine = next(
        m["stateMachineArn"]
        for m in sfn.list_state_machines()["stateMachines"]
        if m["name"].endswith("-class-summary")
    )

    def start(_: int) -> str:
        event = {
            "source": "verriflo",
            "detail-type": "room.finished",
            "detail": {"orgId": env["DEMO_ORG_ID"], "data": {"roomId": f"bench-{uuid.uuid4().hex[:10]}"}},
        }
        return sfn.start_execution(stateMachineArn=machine, input=json.dumps(event))["executionArn"]

    with ThreadPoolExecutor(workers) as pool:
        arns = list(pool.map(start, range(count)))
    deadline = time.monotonic() + WAIT_S
    statuses: dict[str, str] = {}
    while len(statuses) < len(arns) and time.monotonic() < deadline:
        for arn in arns:
            if arn not in statuses:
                status = sfn.describe_execution(executionArn=arn)["status"]
                if status != "RUNNING":
                    statuses[arn] = status
        time.sleep(0.5)
    return [statuses.get(arn, "RUNNING") for arn in arns]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--executions", type=int, default=300)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--stack", default=f"sfn-{os.getpid()}")
    args = parser.parse_args(argv)

    report = Report(f"LocalStack's memory per Step Functions execution ({args.executions} class summaries)")
    with deployed(args.stack) as env:
        _summaries(env, WARMUP, args.workers)
        first = stack_figures(args.stack)["localstack"]
        started = time.monotonic()
        statuses = _summaries(env, args.executions // 2, args.workers)
        # judged over the second half, as the soak judges LocalStack: its pools have grown by then
        before, kept_before = stack_figures(args.stack)["localstack"], step_functions_kept(env)
        second = _summaries(env, args.executions - len(statuses), args.workers)
        elapsed = time.monotonic() - started
        time.sleep(2)
        after, kept_after = stack_figures(args.stack)["localstack"], step_functions_kept(env)
    statuses += second

    n = max(len(second), 1)
    grown = (after.rss_kb - before.rss_kb) * 1024 / n
    history = (kept_after.held_bytes - kept_before.held_bytes) / n
    ended = sum(s != "RUNNING" for s in statuses)
    report.add(
        Result(
            "executions ended",
            ended,
            "",
            target=str(len(statuses)),
            ok=ended == len(statuses),
            note=f"{dict((s, statuses.count(s)) for s in sorted(set(statuses)))}, {elapsed:.0f}s",
        ),
        Result(
            "LocalStack RSS growth per execution (second half)",
            grown / 1024,
            "kB",
            baseline=history / 1024,
            note="baseline: the execution's history as Python objects, as LocalStack keeps it",
        ),
        Result(
            "LocalStack RSS growth per execution beyond its history (second half)",
            max(grown - history, 0) / 1024,
            "kB",
        ),
        Result(
            "history per execution as JSON",
            (kept_after.json_bytes - kept_before.json_bytes) / n / 1024,
            "kB",
        ),
        Result(
            "LocalStack RSS, memory maps, threads",
            after.rss_kb / 1024,
            "MB",
            baseline=first.rss_kb / 1024,
            note=f"after the warm-up -> end; half-way {before.rss_kb // 1024} MB; "
            f"maps {first.maps} -> {after.maps}, threads {first.threads} -> {after.threads}",
        ),
    )
    report.print()
    return 0 if ended == len(statuses) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
