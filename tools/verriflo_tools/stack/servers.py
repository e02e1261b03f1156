"""The stores every stack and every integration test session runs: the MongoDB-wire server
(SecantusDB) and Redis, on loopback. The commands are built here once; `tests/servers.py` starts
the same ones for the tests."""

from __future__ import annotations

from pathlib import Path

from verriflo_tools.stack.interpreters import redis_server, require
from verriflo_tools.stack.ports import choose, tcp_open
from verriflo_tools.stack.processes import base_env, poll, running_pid, spawn
from verriflo_tools.stack.state import VENV, Stack, log


def mongo_command(exe: Path, port: int, storage: Path, *options: str) -> list[str]:
    """SecantusDB (MongoDB wire protocol) on loopback `port`, its data in `storage`."""
    return [str(exe), "--host", "127.0.0.1", "--port", str(port), "--storage-path", str(storage), *options]


def redis_command(port: int, directory: Path, *options: str) -> list[str]:
    """A Redis on loopback `port` that keeps nothing on disk, in the foreground."""
    return [
        redis_server(),
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--dir",
        str(directory),
        *options,
    ]


def start_mongo(stack: Stack, ports: dict[str, int]) -> None:
    marker = "secantusd"
    if running_pid(stack, "mongodb", marker):
        return
    exe = require(VENV / "bin" / "secantusd-py", "run `make venv`")
    port = choose(ports, "mongodb", None)
    data = stack.root / "mongodb"
    data.mkdir(parents=True, exist_ok=True)
    pid = spawn(stack, "mongodb", mongo_command(exe, port, data, "--sync-on-commit"), base_env())
    poll("MongoDB-wire server", lambda: tcp_open(port), 30, pid=pid)
    log(f"mongodb on 127.0.0.1:{port} (pid {pid})")


def start_redis(stack: Stack, ports: dict[str, int]) -> None:
    marker = "redis-server"
    if running_pid(stack, "redis", marker):
        return
    port = choose(ports, "redis", None)
    pid = spawn(stack, "redis", redis_command(port, stack.root), base_env())
    poll("redis", lambda: tcp_open(port), 15, pid=pid)
    log(f"redis on 127.0.0.1:{port} (pid {pid})")


def mongodb_uri(ports: dict[str, int]) -> str:
    # retryWrites=false: with retryable writes the local server scans a growing table under a lock
    # (150-300 ops/s after ~10k writes); without, it stays flat. Production keeps the default.
    return f"mongodb://127.0.0.1:{ports['mongodb']}/verriflo?retryWrites=false&directConnection=true"


def redis_url(ports: dict[str, int]) -> str:
    return f"redis://127.0.0.1:{ports['redis']}/0"
