"""`python -m verriflo_tools ...`: the `verriflo` CLI without its console script (works before the
dev venv is reinstalled, and from any worktree with `tools/` on PYTHONPATH)."""

from __future__ import annotations

from verriflo_tools.cli import main

raise SystemExit(main())
