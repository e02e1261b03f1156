"""A deployed local stack for the benchmarks that need one (the soak, Step Functions' memory):
brought up and torn down with scripts/stack.py, its AWS clients, and what LocalStack keeps in its
memory as AWS keeps it (CloudWatch Logs, small S3 objects, Step Functions executions)."""

from __future__ import annotations

import json
import tracemalloc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from proc_support import stack_cli

# LocalStack's S3 keeps an object under 512 KiB in memory (a SpooledTemporaryFile), larger ones on disk
S3_IN_MEMORY_BELOW = 512 * 1024


@contextmanager
def deployed(stack: str) -> Iterator[dict[str, str]]:
    """A stack of its own (the e2e build), up for the block and down after it: its environment."""
    stack_cli("down", "--stack", stack, timeout=120)
    try:
        up = stack_cli("up", "--stack", stack, "--build-key", "e2e", "--json", timeout=1800)
        if up.returncode != 0:
            raise RuntimeError(f"stack {stack} did not come up:\n{up.stderr[-4000:]}")
        yield json.loads(up.stdout.strip().splitlines()[-1])
    finally:
        stack_cli("down", "--stack", stack, timeout=120)


def aws_client(env: dict[str, str], service: str):
    import boto3

    return boto3.client(
        service,
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id="test",
        aws_secret_access_key="test",  # noqa: S106 - LocalStack's fixed test credentials
    )


def stored_log_bytes(env: dict[str, str]) -> int:
    """What LocalStack holds of the functions' CloudWatch Logs (kept, as in AWS, and in its memory)."""
    pages = aws_client(env, "logs").get_paginator("describe_log_groups").paginate()
    return sum(group.get("storedBytes", 0) for page in pages for group in page["logGroups"])


def s3_bytes_in_memory(env: dict[str, str]) -> int:
    """What LocalStack's S3 holds in its memory: every stored object under 512 KiB (the uploads'
    sources, their HLS playlists and segments), kept as S3 keeps them."""
    s3 = aws_client(env, "s3")
    total = 0
    for bucket in s3.list_buckets()["Buckets"]:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket["Name"]):
            total += sum(o["Size"] for o in page.get("Contents", []) if o["Size"] < S3_IN_MEMORY_BELOW)
    return total


@dataclass(frozen=True)
class Executions:
    """The state machines' executions LocalStack keeps (AWS keeps them 90 days): the class summaries
    every room lifecycle runs. Their histories' size as JSON, and as the Python objects LocalStack
    holds them in (dicts of strings and datetimes, measured here by rebuilding them under tracemalloc
    in this interpreter, the same Python as LocalStack's)."""

    count: int
    json_bytes: int
    held_bytes: int


def step_functions_kept(env: dict[str, str]) -> Executions:
    sfn = aws_client(env, "stepfunctions")
    histories = []
    for machine in sfn.list_state_machines()["stateMachines"]:
        for page in sfn.get_paginator("list_executions").paginate(stateMachineArn=machine["stateMachineArn"]):
            for execution in page["executions"]:
                pages = sfn.get_paginator("get_execution_history").paginate(
                    executionArn=execution["executionArn"]
                )
                histories.append([event for p in pages for event in p["events"]])
    text = json.dumps(histories, default=str)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        rebuilt = json.loads(text, object_hook=_timestamps)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    del rebuilt
    return Executions(len(histories), len(text), held)


def _timestamps(event: dict) -> dict:
    """A history event as LocalStack keeps it: its timestamp a datetime, not a string."""
    if isinstance(event.get("timestamp"), str):
        event["timestamp"] = datetime.fromisoformat(event["timestamp"])
    return event
