"""The lock files (`make lock`) and the venvs made from them. Stdlib only: the Makefile runs it with
each venv's own interpreter.

    python scripts/locks.py sync <lock>   # run with a venv's python: remove what <lock> does not list
    python scripts/locks.py installed     # that venv's distributions as JSON (tests/unit/test_build_locks.py)

`pip install --require-hashes -r <lock>` brings a venv up to its lock (a package already at its locked
version is left alone); `sync` then uninstalls every distribution the lock does not name, so the venv
is the lock, package for package, without being made anew. Editable installs (the project,
localstack/) and pip itself (requirements/pip.lock) are not the lock's business.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?==(\S+)")
NOT_LOCKED = {"pip"}


def canonical(name: str) -> str:
    """A distribution name as PEP 503 compares them."""
    return re.sub(r"[-_.]+", "-", name).lower()


def entries(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name -> (version, hashes) of a `uv pip compile --generate-hashes` lock."""
    found: dict[str, tuple[str, list[str]]] = {}
    for line in path.read_text().replace("\\\n", " ").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = PIN.match(line)
        if not match:
            raise ValueError(f"{path}: not an exact pin: {line.strip()[:80]}")
        name = canonical(match.group(1))
        if name in found:
            raise ValueError(f"{path}: {name} locked twice")
        found[name] = (match.group(3), re.findall(r"--hash=sha256:([0-9a-f]{64})", line))
    return found


def installed() -> dict[str, str]:
    """This interpreter's distributions (canonical name -> version), less editable installs (whose
    source folder may hold an egg-info of the same name, hence by name)."""
    dists = list(metadata.distributions())

    def editable(dist: metadata.Distribution) -> bool:
        direct = dist.read_text("direct_url.json")
        return bool(direct and json.loads(direct).get("dir_info", {}).get("editable"))

    skip = {canonical(d.metadata["Name"]) for d in dists if editable(d)}
    return {
        canonical(d.metadata["Name"]): d.version for d in dists if canonical(d.metadata["Name"]) not in skip
    }


def unlocked(present: dict[str, str], locked: dict[str, object]) -> list[str]:
    """The installed distributions a lock does not name."""
    return sorted(name for name in present if name not in locked and name not in NOT_LOCKED)


def main(argv: list[str]) -> int:
    if argv == ["installed"]:
        print(json.dumps(installed()))
        return 0
    if len(argv) != 2 or argv[0] != "sync":
        print(__doc__, file=sys.stderr)
        return 2
    extra = unlocked(installed(), entries(Path(argv[1])))
    if extra:
        print(f"removing what {argv[1]} does not list: {' '.join(extra)}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "--yes", "--quiet", *extra], check=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
