"""Real local servers for tests and benchmarks: the MongoDB-wire server and Redis on free ports,
started with the same commands as a stack's (`verriflo_tools.stack.servers`), owned by the session."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from verriflo_tools.stack.ports import free_port
from verriflo_tools.stack.servers import mongo_command, mongodb_uri, redis_command, redis_url


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """Bounded polling until something accepts connections on `port`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on port {port} after {timeout}s")


@contextmanager
def asgi_server(app: object, **config: object) -> Iterator[str]:
    """An ASGI app under a real uvicorn on a free loopback port, in a thread; yields its base URL."""
    import uvicorn

    port = free_port()
    instance = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", **config))
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not instance.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        assert instance.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        instance.should_exit = True
        thread.join(timeout=10)


@dataclass
class Server:
    name: str
    port: int
    proc: subprocess.Popen
    url: str

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def start_mongo(data_dir: Path) -> Server:
    """SecantusDB (MongoDB wire protocol) as its own process, single-node replica set."""
    port = free_port()
    exe = Path(sys.executable).with_name("secantusd-py")
    data_dir.mkdir(parents=True, exist_ok=True)
    log = open(data_dir / "server.log", "ab")  # noqa: SIM115 - closed with the process
    argv = mongo_command(exe, port, data_dir / "db", "--log-level", "WARNING")
    proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    wait_for_port(port, proc)
    return Server("mongodb", port, proc, mongodb_uri({"mongodb": port}))


def start_redis(data_dir: Path) -> Server:
    """A throwaway Redis with no persistence."""
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        redis_command(port, data_dir, "--logfile", str(data_dir / "redis.log")),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port, proc)
    return Server("redis", port, proc, redis_url({"redis": port}))
