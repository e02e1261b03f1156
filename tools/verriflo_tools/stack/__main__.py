"""`python -m verriflo_tools.stack ...`: the same commands as `python scripts/stack.py ...`."""

from __future__ import annotations

import sys

from verriflo_tools.stack.cli import main

sys.exit(main())
