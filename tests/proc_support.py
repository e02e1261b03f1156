"""A stack brought up by scripts/stack.py: the script itself (`stack_cli`), and what its server
processes hold, from /proc: memory maps, resident memory and threads.

Used by the e2e fixtures, and by the soak benchmark and its fast e2e regression test to see a leak
per request (a process that keeps one thread stack per request grows by two maps per request and
dies at the kernel's `vm.max_map_count`, 65,530 by default).
"""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STACK_SCRIPT = REPO / "scripts" / "stack.py"
# the servers scripts/stack.py starts, by the name of their pid file
SERVERS = ("localstack", "mongodb", "redis", "livekit")


def stack_cli(*args: str, timeout: float) -> subprocess.CompletedProcess:
    """scripts/stack.py with these arguments, its output captured (it needs only a python3: the
    calling venv's interpreter is one)."""
    return subprocess.run(  # noqa: S603 - fixed command
        [sys.executable, str(STACK_SCRIPT), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@dataclass(frozen=True)
class ProcFigures:
    """One process's (or a group's, summed) maps, RSS in kB and threads."""

    maps: int
    rss_kb: int
    threads: int
    processes: int = 1

    def __add__(self, other: ProcFigures) -> ProcFigures:
        return ProcFigures(
            self.maps + other.maps,
            self.rss_kb + other.rss_kb,
            self.threads + other.threads,
            self.processes + other.processes,
        )


NONE = ProcFigures(0, 0, 0, 0)


def figures(pid: int) -> ProcFigures:
    """The process's figures now; OSError if it is gone."""
    proc = Path(f"/proc/{pid}")
    with open(proc / "maps", "rb") as maps:
        count = sum(1 for _ in maps)
    status = dict(line.split(":", 1) for line in (proc / "status").read_text().splitlines() if ":" in line)
    rss = int(status.get("VmRSS", "0 kB").split()[0])
    return ProcFigures(maps=count, rss_kb=rss, threads=int(status["Threads"]))


def children(pid: int) -> list[int]:
    """Direct children of pid (every thread's list, as Linux keeps them per thread)."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def descendants(pid: int) -> list[int]:
    """Every process below pid (LocalStack's Lambda inits and runtimes)."""
    out, todo = [], children(pid)
    while todo:
        child = todo.pop()
        out.append(child)
        todo += children(child)
    return out


def group_figures(pids: list[int]) -> ProcFigures:
    """The summed figures of the processes still alive among pids."""
    total = NONE
    for pid in pids:
        try:
            total = total + figures(pid)
        except OSError:
            continue  # ended between listing and reading
    return total


def stack_pids(stack: str) -> dict[str, int]:
    """The running servers of a stack brought up by scripts/stack.py, by name."""
    pids = {}
    for name in SERVERS:
        pid_file = REPO / ".local" / stack / "pids" / f"{name}.pid"
        if pid_file.exists() and Path(f"/proc/{pid_file.read_text().strip()}").exists():
            pids[name] = int(pid_file.read_text().strip())
    return pids


def stack_figures(stack: str) -> dict[str, ProcFigures]:
    """Each server's figures, plus LocalStack's Lambda processes summed as `lambda processes`."""
    out = {}
    for name, pid in stack_pids(stack).items():
        try:
            out[name] = figures(pid)
        except OSError:
            continue
        if name == "localstack":
            out["lambda processes"] = group_figures(descendants(pid))
    return out
