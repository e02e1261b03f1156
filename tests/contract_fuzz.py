"""Fuzz a served OpenAPI document with Schemathesis: every operation, positive and negative cases,
each answer checked with `not_a_server_error` and `response_schema_conformance`. Bounded: a few
examples per operation, no shrinking, a timeout per request; derandomized, so a failure reproduces.
Failures are collected (not raised at the first) so one run counts them all."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import hypothesis.strategies as st
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import Failure, FailureGroup
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import response_schema_conformance

CHECKS = {
    "not_a_server_error": not_a_server_error,
    "response_schema_conformance": response_schema_conformance,
}


def fuzz(
    document_url: str,
    base_url: str,
    headers: dict[str, str],
    *,
    examples: int = 6,
    timeout_s: float = 30,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Counts (operations, cases, failures per check, seconds) and the failures found."""
    schema = schemathesis.openapi.from_url(document_url)
    counts: dict[str, Any] = {"operations": 0, "cases": 0} | dict.fromkeys(CHECKS, 0)
    failures: list[dict[str, Any]] = []
    started = time.monotonic()

    def checker(operation: Any) -> Callable[[Any], None]:
        def check(case: Any) -> None:
            send(operation, case)

        return check

    def send(operation: Any, case: Any) -> None:
        counts["cases"] += 1
        response = case.call(base_url=base_url, headers=headers, timeout=timeout_s)
        for name, function in CHECKS.items():
            try:
                case.validate_response(response, checks=[function], headers=headers)
            except (Failure, FailureGroup) as exc:
                counts[name] += 1
                failures.append(
                    {
                        "check": name,
                        "operation": operation.label,
                        "status": response.status_code,
                        "body": response.text[:300],
                        "request": case.as_curl_command(headers={}),  # without our credentials
                        "failure": str(exc)[:600],
                    }
                )

    for result in schema.get_all_operations():
        operation = result.ok()
        counts["operations"] += 1
        cases = st.one_of(operation.as_strategy(generation_mode=mode) for mode in GenerationMode)
        given(case=cases)(
            settings(
                max_examples=examples * len(GenerationMode),
                deadline=None,
                derandomize=True,
                database=None,
                phases=[Phase.explicit, Phase.generate],
                suppress_health_check=list(HealthCheck),
            )(checker(operation))
        )()
    counts["seconds"] = round(time.monotonic() - started, 1)
    return counts, failures
