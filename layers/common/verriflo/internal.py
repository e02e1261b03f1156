"""The guard for service-to-service routes: `X-Dispatch-Secret`, compared in constant time."""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from verriflo.errors import Forbidden
from verriflo.secrets import get_secret
from verriflo.settings import secret_settings

DISPATCH_HEADER = "x-dispatch-secret"


def check_dispatch_secret(headers: Mapping[str, Any] | None) -> None:
    """Raise Forbidden unless the request carries the current dispatch secret."""
    presented = next((v for k, v in (headers or {}).items() if k.lower() == DISPATCH_HEADER), None)
    expected = get_secret(secret_settings().dispatch_secret_name)
    # compare_digest on bytes of equal type; a missing header compares against an empty value so the
    # time taken does not reveal whether it was present.
    if not hmac.compare_digest((presented or "").encode(), expected.encode()) or not presented:
        raise Forbidden("This route is internal.")
