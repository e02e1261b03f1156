"""Processes a stack starts: spawned into their own session with a log file and a pid file, stopped
by that pid (SIGTERM, then SIGKILL), waited for by bounded polling."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

from verriflo_tools.stack.state import REPO, Stack, StackError, log


def _pid_file(stack: Stack, name: str) -> Path:
    return stack.pids / f"{name}.pid"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def running_pid(stack: Stack, name: str, marker: str) -> int | None:
    """The recorded pid if that process still runs and is still ours (pids get reused)."""
    path = _pid_file(stack, name)
    if not path.exists():
        return None
    try:
        pid = int(path.read_text().strip())
    except ValueError:
        return None
    cmd = _cmdline(pid)
    if cmd and marker in cmd:
        return pid
    return None


def spawn(stack: Stack, name: str, argv: list[str], env: dict[str, str], cwd: Path | None = None) -> int:
    logfile = open(stack.logs / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(  # noqa: S603 - fixed commands built here
        argv,
        stdin=subprocess.DEVNULL,
        stdout=logfile,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=str(cwd or REPO),
        start_new_session=True,  # outlives this script; stopped by pid
    )
    logfile.close()
    _pid_file(stack, name).write_text(str(proc.pid))
    return proc.pid


def stop_pid(stack: Stack, name: str, marker: str, grace_s: float = 10.0) -> None:
    pid = running_pid(stack, name, marker)
    if pid is None:
        _pid_file(stack, name).unlink(missing_ok=True)
        return
    log(f"stopping {name} (pid {pid})")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not _wait_exit(pid, grace_s):
        # LocalStack ignored SIGTERM about once in four runs here: same pid, harder signal
        log(f"{name} ignored SIGTERM for {grace_s:.0f}s; sending SIGKILL")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait_exit(pid, 5.0)
    _pid_file(stack, name).unlink(missing_ok=True)


def _wait_exit(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            # reap it if it is our child; otherwise just probe
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return True
        except ChildProcessError:
            pass
        if not Path(f"/proc/{pid}").exists() or "zombie" in _proc_state(pid):
            return True
        time.sleep(0.1)
    return False


def _proc_state(pid: int) -> str:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("State:"):
                return line.lower()
    except OSError:
        return "gone"
    return ""


def poll(what: str, check, timeout_s: float, interval_s: float = 0.1, pid: int | None = None):
    """Bounded polling: call `check` until it returns a truthy value or time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if pid is not None and not Path(f"/proc/{pid}").exists():
            raise StackError(f"{what}: process {pid} exited (see logs)")
        if time.monotonic() > deadline:
            raise StackError(f"{what}: not ready after {timeout_s:.0f}s")
        time.sleep(interval_s)


def base_env() -> dict[str, str]:
    """A clean environment for the servers: no AWS settings or venvs leak in from the caller."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "USER", "TERM")
    return {k: os.environ[k] for k in keep if k in os.environ}


def run_logged(argv: list[str], env: dict[str, str], stack: Stack, name: str, cwd: Path = REPO) -> None:
    cwd.mkdir(parents=True, exist_ok=True)
    with open(stack.logs / f"{name}.log", "wb") as out:
        proc = subprocess.run(argv, env=env, cwd=str(cwd), stdout=out, stderr=subprocess.STDOUT, check=False)  # noqa: S603
    if proc.returncode != 0:
        tail = (stack.logs / f"{name}.log").read_text(errors="replace").splitlines()[-40:]
        raise StackError(f"{name} failed (exit {proc.returncode}); last lines:\n" + "\n".join(tail))
