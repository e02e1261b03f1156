"""The interpreters and programs a stack runs: python3.13, the venvs' tools, redis-server."""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
from pathlib import Path

from verriflo_tools.stack.state import REPO, StackError


def python313() -> str:
    """python3.13 for venvs and `sam build`: on PATH, else from pyenv. Each candidate is run once:
    a pyenv shim named python3.13 can exist on PATH and still refuse to run."""
    candidates = [shutil.which("python3.13") or ""]
    roots = []
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        roots.append(
            subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=True).stdout.strip()
        )
    roots += [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv")]
    for root in filter(None, roots):
        candidates += sorted(glob.glob(f"{root}/versions/3.13*/bin/python3.13"), reverse=True)
    for candidate in filter(None, candidates):
        with contextlib.suppress(OSError):
            if subprocess.run([candidate, "-c", ""], capture_output=True, check=False).returncode == 0:  # noqa: S603
                return candidate
    raise StackError("python3.13 not found (PATH or pyenv)")


def require(path: Path, hint: str) -> Path:
    if not path.exists():
        raise StackError(f"{path.relative_to(REPO)} missing: {hint}")
    return path


def redis_server() -> str:
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if not found:
        raise StackError("redis-server not installed: run `make deps` (apt-get install -y redis-server)")
    return found
