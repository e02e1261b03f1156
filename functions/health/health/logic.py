"""Liveness and readiness checks, run concurrently so readiness costs the slowest check, not the sum."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait

from verriflo.errors import ServiceUnavailable
from verriflo.openapi_document import load_document
from verriflo.orgs import now

from health.config import health_settings
from health.models import Check, Liveness, Readiness
from health.store import CHECKS


def liveness() -> Liveness:
    """Always ok while the function runs."""
    return Liveness(time=now())


def _run(name: str, check: Callable[[], object]) -> Check:
    start = time.perf_counter()
    try:
        check()
    except Exception as exc:  # noqa: BLE001 - a health check reports any failure as "down"
        return Check(
            name=name,
            status="down",
            latency_ms=round((time.perf_counter() - start) * 1000, 2),
            error=type(exc).__name__,
        )
    return Check(name=name, status="up", latency_ms=round((time.perf_counter() - start) * 1000, 2))


def readiness() -> Readiness:
    """Each dependency's status and latency; ServiceUnavailable (the error envelope, the checks in
    its details) when one is down. A check still running after the timeout is reported down."""
    timeout = health_settings().check_timeout_s + 1
    pool = ThreadPoolExecutor(max_workers=len(CHECKS))
    futures = {name: pool.submit(_run, name, check) for name, check in CHECKS.items()}
    wait(futures.values(), timeout=timeout)
    pool.shutdown(wait=False, cancel_futures=True)
    checks = [
        f.result()
        if f.done()
        else Check(name=name, status="down", latency_ms=timeout * 1000, error="Timeout")
        for name, f in futures.items()
    ]
    report = Readiness(ready=all(c.status == "up" for c in checks), checks=checks)
    if not report.ready:
        down = ", ".join(c.name for c in checks if c.status == "down")
        raise ServiceUnavailable(
            f"Not ready: {down} unavailable.",
            headers={"Retry-After": "5"},
            details=report.model_dump(mode="json", by_alias=True),
        )
    return report


def openapi_document() -> dict:
    """The API's OpenAPI document."""
    return load_document()
