"""Seeding a deployed stack: indexes and the demo org, through the operators' CLI."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import urllib.error
import urllib.request

from verriflo_tools.stack.interpreters import require
from verriflo_tools.stack.localstack import NO_PROXY, aws_env
from verriflo_tools.stack.servers import mongodb_uri, redis_url
from verriflo_tools.stack.state import REPO, VENV, Stack, StackError


def app_env(stack: Stack, ports: dict[str, int]) -> dict[str, str]:
    """What the operators' CLI and tests need to reach this stack's stores."""
    env = aws_env(stack, ports)
    env.update({"MONGODB_URI": mongodb_uri(ports), "REDIS_URL": redis_url(ports), "STAGE": "local"})
    return env


def cli_command(env: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """The operators' CLI (`verriflo`) as this checkout has it, and `env` to run it with: its code
    ahead of the dev venv's editable install, which points at whichever checkout installed it."""
    python = require(VENV / "bin" / "python", "run `make venv`")
    path = os.pathsep.join(str(REPO / p) for p in ("tools", "layers/common"))
    return [str(python), "-m", "verriflo_tools"], env | {"PYTHONPATH": path}


def run_cli(env: dict[str, str], *args: str) -> dict:
    """`verriflo --json <args>` against the stores `env` names; the JSON it printed last."""
    argv, env = cli_command(env)
    proc = subprocess.run(  # noqa: S603
        [*argv, "--json", *args], env=env, cwd=str(REPO), capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise StackError(f"verriflo {args[0]} failed: {proc.stderr.strip()[-1000:]}")
    # the last JSON line is the result (the CLI may log before it)
    for line in reversed(proc.stdout.strip().splitlines()):
        with contextlib.suppress(ValueError):
            return json.loads(line)
    raise StackError(f"verriflo {args[0]} printed no JSON")


def seed_demo(stack: Stack, ports: dict[str, int]) -> dict:
    """Every index (idempotent: the unique ones are part of the data model), then the demo org."""
    run_cli(app_env(stack, ports), "db-init")
    return run_cli(app_env(stack, ports), "seed-demo")


def demo_key_works(api_url: str, key: str) -> bool:
    """Re-running `up` keeps the demo org it seeded before, if its key still authenticates."""
    if not key:
        return False
    request = urllib.request.Request(f"{api_url}/v1/auth/whoami", headers={"VF-ORG-ID": key})  # noqa: S310
    try:
        with NO_PROXY.open(request, timeout=60) as resp:
            return resp.status == 200
    except (OSError, urllib.error.URLError):
        return False
