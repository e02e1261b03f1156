"""What the rooms function reads of a LiveKit webhook's participant: why they were disconnected and
when, to the millisecond, the connection began."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.protobuf import json_format
from livekit.protocol import models, webhook
from rooms import lk


def left(**participant) -> lk.Notice:
    info = models.ParticipantInfo(sid="PA_abc", identity="s-1", **participant)
    return lk._notice(
        webhook.WebhookEvent(event="participant_left", id="EV_1", created_at=1, participant=info)
    )


@pytest.mark.parametrize(
    ("reason", "read"),
    [
        (models.DisconnectReason.PARTICIPANT_REMOVED, "PARTICIPANT_REMOVED"),
        (models.DisconnectReason.CLIENT_INITIATED, "CLIENT_INITIATED"),
        (models.DisconnectReason.UNKNOWN_REASON, "UNKNOWN_REASON"),
    ],
)
def test_the_disconnect_reason_is_read_by_its_name(reason, read):
    assert left(disconnect_reason=reason).participant.disconnect_reason == read


def test_a_reason_newer_than_our_protocol_package_is_unknown_not_an_error():
    info = json_format.Parse('{"identity": "s-1", "disconnectReason": 977}', models.ParticipantInfo())
    event = webhook.WebhookEvent(event="participant_left", id="EV_2", participant=info)
    assert lk._notice(event).participant.disconnect_reason == "UNKNOWN_REASON"


def test_the_connection_start_is_kept_to_the_millisecond():
    person = left(joined_at=1_700_000_000, joined_at_ms=1_700_000_000_250).participant
    assert person.joined_at == datetime.fromtimestamp(1_700_000_000, UTC)
    assert person.joined_at_ms == 1_700_000_000_250
