"""The API's OpenAPI document as the functions serve it: `openapi.json`, shipped with this layer.

It is built from every function's routes by the tools (`verriflo openapi --write`,
`verriflo_tools.openapi`), so serving it costs a file read instead of importing every function.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

DOCUMENT = Path(__file__).with_name("openapi.json")


@cache
def load_document() -> dict[str, Any]:
    """The document shipped with the layer."""
    return json.loads(DOCUMENT.read_text())
