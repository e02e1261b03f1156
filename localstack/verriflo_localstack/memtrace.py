"""Opt-in heap tracing of the LocalStack process, to find what makes its memory grow.

`VERRIFLO_LOCALSTACK_TRACEMALLOC=<folder>` (passed through by scripts/stack.py) starts `tracemalloc`
when our executor plugin loads and, every `VERRIFLO_LOCALSTACK_TRACEMALLOC_EVERY_S` seconds (60),
writes `<folder>/heap-<n>.txt`: the traced total, the allocation sites that grew most since the
first report (by traceback), and the live objects counted by type. Off unless asked for: tracing
slows LocalStack down by about half.
"""

from __future__ import annotations

import gc
import os
import threading
import time
import tracemalloc
from collections import Counter
from pathlib import Path

_started = threading.Lock()


def install() -> bool:
    """Start tracing if asked for (once per process); True when it runs."""
    target = os.environ.get("VERRIFLO_LOCALSTACK_TRACEMALLOC")
    if not target or not _started.acquire(blocking=False):
        return False
    folder = Path(target)
    folder.mkdir(parents=True, exist_ok=True)
    tracemalloc.start(int(os.environ.get("VERRIFLO_LOCALSTACK_TRACEMALLOC_FRAMES", "12")))
    every = float(os.environ.get("VERRIFLO_LOCALSTACK_TRACEMALLOC_EVERY_S", "60"))
    threading.Thread(target=_report, args=(folder, every), name="verriflo-memtrace", daemon=True).start()
    return True


def _growth(snap: tracemalloc.Snapshot, since: tracemalloc.Snapshot, title: str, top: int) -> list[str]:
    lines = [f"\n== growth since {title}, by traceback =="]
    for stat in snap.compare_to(since, "traceback")[:top]:
        lines.append(
            f"{stat.size_diff / 1024:+.0f} kB ({stat.count_diff:+d} blocks), now {stat.size / 1024:.0f} kB"
        )
        lines.extend("    " + line for line in stat.traceback.format(limit=8))
    return lines


def _report(folder: Path, every: float) -> None:
    ignore = [tracemalloc.Filter(False, tracemalloc.__file__), tracemalloc.Filter(False, __file__)]
    ignore.append(tracemalloc.Filter(False, "*/linecache.py"))  # this report's own source lines
    first: tracemalloc.Snapshot | None = None
    previous: tracemalloc.Snapshot | None = None
    n = 0
    while True:
        time.sleep(every)
        snap = tracemalloc.take_snapshot().filter_traces(ignore)
        first = first or snap
        current, peak = tracemalloc.get_traced_memory()
        types = Counter(type(o).__qualname__ for o in gc.get_objects())
        lines = [
            f"traced {current / 2**20:.1f} MB (peak {peak / 2**20:.1f} MB), gc objects {sum(types.values())}"
        ]
        # the steady growth shows between consecutive reports; start-up and deploys since the first
        lines += _growth(snap, previous or snap, "the previous report", 15)
        lines += _growth(snap, first, "the first report", 10)
        lines.append("\n== largest by line ==")
        lines.extend(str(s) for s in snap.statistics("lineno")[:25])
        lines.append("\n== objects by type ==")
        lines.extend(f"{count:>9} {name}" for name, count in types.most_common(30))
        if wanted := os.environ.get("VERRIFLO_LOCALSTACK_TRACEMALLOC_REFERRERS"):
            lines += _holders(wanted)
        previous = snap
        n += 1
        (folder / f"heap-{n:03d}.txt").write_text("\n".join(lines) + "\n")


def _holders(type_name: str, samples: int = 3, depth: int = 8) -> list[str]:
    """What keeps the oldest objects of `type_name` alive: one chain of referrers each (the type of
    each holder, and for dicts and objects the attribute that holds the next link)."""
    import inspect

    found = [o for o in gc.get_objects() if type(o).__qualname__ == type_name][:samples]
    lines = [f"\n== what holds {type_name} ({samples} oldest) =="]
    for obj in found:
        chain: list[str] = []
        current, seen = obj, {id(found), id(chain)}
        for _ in range(depth):
            holders = [
                r
                for r in gc.get_referrers(current)
                if id(r) not in seen and not inspect.isframe(r) and r is not found and r is not chain
            ]
            if not holders:
                break
            seen.add(id(holders))  # this walk's own list refers to the next link too
            holder = holders[0]
            seen.add(id(holder))
            where = ""
            if isinstance(holder, dict):
                where = next((f"[{k!r}]" for k, v in holder.items() if v is current), "")
            chain.append(
                f"{type(holder).__module__}.{type(holder).__qualname__}{where} ({len(holders)} holders)"
            )
            current = holder
        lines.append("  " + " <- ".join(chain))
    return lines
