"""Recordings are deleted only by the retention sweep, counted from the end of their class: no S3
lifecycle rule of the recordings bucket may expire a recording by its age (a class can stay open
longer than any such rule's days)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]


def expiring_rules(template: dict[str, Any], bucket: str) -> list[dict[str, Any]]:
    """The bucket's enabled lifecycle rules that delete current objects by age or date."""
    rules = template["Resources"][bucket]["Properties"].get("LifecycleConfiguration", {}).get("Rules", [])
    return [
        r for r in rules if r.get("Status") == "Enabled" and ({"ExpirationInDays", "ExpirationDate"} & set(r))
    ]


def test_no_lifecycle_rule_expires_a_recording_by_its_age():
    from cfnlint.decode import cfn_yaml

    template = cfn_yaml.load(str(ROOT / "template.yaml"))
    assert expiring_rules(template, "RecordingsBucket") == []


@pytest.mark.parametrize(
    "rule",
    [
        {"Id": "backstop", "Status": "Enabled", "Prefix": "recordings/", "ExpirationInDays": 2},
        {"Id": "dated", "Status": "Enabled", "ExpirationDate": "2030-01-01T00:00:00Z"},
    ],
)
def test_an_age_based_expiry_rule_would_be_caught(rule):
    template = {"Resources": {"B": {"Properties": {"LifecycleConfiguration": {"Rules": [rule]}}}}}
    assert expiring_rules(template, "B") == [rule]
