"""The contract of the served OpenAPI document, fuzzed with Schemathesis against the deployed stack
(`tests/contract_fuzz.py`): no server error and no answer that its schema does not describe, on
every operation, within a few minutes."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from contract_fuzz import fuzz

pytestmark = pytest.mark.e2e

BUDGET_S = 240
SUMMARY = Path(__file__).resolve().parents[1] / "artifacts" / "schemathesis-summary.json"


def test_fuzzing_the_served_document_finds_no_server_error_and_no_schema_mismatch(
    api_url, demo_key, dispatch_secret
):
    # The demo org's key for org routes, the dispatch secret for the internal /api/* routes.
    headers = {"VF-ORG-ID": demo_key, "X-Dispatch-Secret": dispatch_secret}
    try:
        counts, failures = fuzz(f"{api_url}/v1/openapi.json", api_url, headers)
    finally:
        # Positive cases may switch the demo org's tutor defaults (PUT /v1/ai-tutor/settings) off or
        # to hints; the later tests on this stack expect the stock ones.
        stock = {"enabled": True, "mode": "explain", "topic": None}
        with httpx.Client(timeout=60, trust_env=False) as client:
            restored = client.put(f"{api_url}/v1/ai-tutor/settings", headers=headers, json=stock)
        assert restored.status_code == 200, restored.text
    SUMMARY.parent.mkdir(parents=True, exist_ok=True)
    SUMMARY.write_text(json.dumps({"counts": counts, "failures": failures}, indent=1))
    print(f"schemathesis: {counts}")  # noqa: T201 - the figures the issue asks for
    assert counts["operations"] >= 75 and counts["cases"] >= counts["operations"]
    assert failures == [], json.dumps(failures[:10], indent=1)
    assert counts["seconds"] < BUDGET_S
