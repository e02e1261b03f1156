"""The event catalogue: one fact per event type, documented in README as in verriflo.webhooks, and
the subscriptions that keep an endpoint subscribed to `recording.ready` getting its facts."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from verriflo import webhook_store, webhooks

README = Path(__file__).resolve().parents[2] / "README.md"


def test_every_event_type_is_in_the_readme_catalogue_with_its_payload_fields():
    rows = {
        m["name"]: m["row"]
        for m in re.finditer(r"^\| `(?P<name>[a-z]+\.[a-z_]+)` \|(?P<row>.*)$", README.read_text(), re.M)
    }
    assert set(rows) == set(webhooks.EVENT_TYPES)
    for entry in webhooks.CATALOGUE:
        documented = set(re.findall(r"`([A-Za-z]+)`", rows[entry.name].rsplit("|", 2)[-2]))
        assert documented == set(entry.fields), entry.name


def test_each_type_appears_once():
    assert len(set(webhooks.EVENT_TYPES)) == len(webhooks.EVENT_TYPES)


@pytest.mark.parametrize(
    "subscribed, event, data, delivered",
    [
        (["recording.ready"], "recording.ready", {"egressId": "EG_1"}, True),
        (["recording.ready"], "video.ready", {"kind": "recording"}, True),  # the recording's HLS
        (["recording.ready"], "video.ready", {"kind": "upload"}, False),
        (["recording.ready"], "video.failed", {"kind": "recording"}, False),
        (["video.ready"], "video.ready", {"kind": "recording"}, True),
        (["video.ready"], "recording.ready", {}, False),
        ([], "video.ready", {"kind": "upload"}, True),  # no filter: everything
    ],
)
def test_who_receives_what(subscribed, event, data, delivered):
    endpoint = webhook_store.Endpoint.model_construct(event_types=subscribed)
    assert endpoint.wants(event, data) is delivered
