"""`python scripts/stack.py up|down|env|...`: the local stack's commands (`make up`, `make down`,
`make status`, the e2e fixtures). The code is the package `verriflo_tools.stack` (tools/); this
file only finds it, so any python3 can run it before a venv exists."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tools"))

from verriflo_tools.stack.cli import main  # noqa: E402 - found through the line above

if __name__ == "__main__":
    sys.exit(main())
