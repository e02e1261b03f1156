"""LocalStack on the host (no Docker): its environment, start and health; the AWS environment that
reaches it."""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request

from verriflo_tools.stack.interpreters import require
from verriflo_tools.stack.ports import choose
from verriflo_tools.stack.processes import base_env, poll, running_pid, spawn
from verriflo_tools.stack.state import (
    DEFAULT_LOCALSTACK_PORT,
    LAMBDA_RUNTIME,
    REGION,
    REPO,
    VENV_LAMBDA,
    VENV_LOCALSTACK,
    Stack,
    log,
)

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def localstack_env(stack: Stack, port: int) -> dict[str, str]:
    ls_root = stack.root / "localstack"
    tmp = ls_root / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    env = base_env()
    env.update(
        {
            # LocalStack on the host, loopback only: the reasons are in localstack/README.md
            "OVERRIDE_IN_DOCKER": "0",
            "GATEWAY_LISTEN": f"127.0.0.1:{port}",
            "GATEWAY_SERVER": "hypercorn",
            "DNS_ADDRESS": "0",
            "DISABLE_EVENTS": "1",
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "SQS_ENDPOINT_STRATEGY": "path",
            "LOCALSTACK_HOST": f"127.0.0.1:{port}",
            "FILESYSTEM_ROOT": str(ls_root / "fs"),
            # LocalStack unzips Lambda code and layers under TMPDIR: keep them in the stack's folder
            "TMPDIR": str(tmp),
            "LAMBDA_RUNTIME_EXECUTOR": "verriflo-process",
            # a function's init (imports, models) may take long on this shared 2-core machine under
            # test load; LocalStack's default of 20 s then fails the environment's start
            "LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT": "60",
            "VERRIFLO_LAMBDA_RUNTIMES": json.dumps({LAMBDA_RUNTIME: str(VENV_LAMBDA / "bin" / "python")}),
            # this checkout's plugins (executor, API Gateway extension), ahead of the venv's editable
            # install, which points at whichever checkout ran `make deps`
            "PYTHONPATH": str(REPO / "localstack"),
        }
    )
    # opt-in heap tracing of LocalStack (localstack/verriflo_localstack/memtrace.py) and the cap on
    # the Lambda log events it keeps (lambda_logs.py)
    passed = ("VERRIFLO_LOCALSTACK_TRACEMALLOC", "VERRIFLO_LOCALSTACK_LAMBDA_LOG_EVENTS")
    env.update({k: v for k, v in os.environ.items() if k.startswith(passed)})
    return env


def localstack_health(port: int) -> dict | None:
    try:
        with NO_PROXY.open(f"http://127.0.0.1:{port}/_localstack/health", timeout=2) as resp:
            return json.loads(resp.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None


def start_localstack(stack: Stack, ports: dict[str, int]) -> None:
    marker = "localstack.runtime.main"
    if running_pid(stack, "localstack", marker) and localstack_health(ports.get("localstack", 0)):
        return
    python = require(VENV_LOCALSTACK / "bin" / "python", "run `make deps`")
    require(VENV_LAMBDA / "bin" / "python", "run `make deps`")
    preferred = DEFAULT_LOCALSTACK_PORT if stack.name == "dev" else None
    port = choose(ports, "localstack", preferred)
    env = localstack_env(stack, port)
    pid = spawn(stack, "localstack", [str(python), "-m", "localstack.runtime.main"], env)
    poll("LocalStack", lambda: localstack_health(port), 60, interval_s=0.2, pid=pid)
    log(f"localstack on 127.0.0.1:{port} (pid {pid})")


def aws_env(stack: Stack, ports: dict[str, int]) -> dict[str, str]:
    env = base_env()
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",  # LocalStack's fixed dummy credentials
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{ports['localstack']}",
        }
    )
    return env
