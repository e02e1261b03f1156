"""The rooms store's typed records keep the stored documents' shape (rooms written before the records
existed are read the same) and let no driver type through, without any I/O."""

from __future__ import annotations

from datetime import UTC, datetime

from bson import ObjectId
from rooms import records
from verriflo import outbox

AT = datetime(2026, 1, 5, 9, 30, tzinfo=UTC)  # a fixed instant, never compared with now


def stored_room() -> dict:
    """A room document as rooms.joining.create_room wrote it before the records, then ended by the API."""
    return {
        "_id": ObjectId(),
        "orgId": "org_0123456789abcdef",
        "roomId": "math-101",
        "title": "Algebra",
        "courseId": None,  # the course it belongs to (optional)
        "lkName": "org_0123456789abcdef.math-101",
        "sid": "RM_abc",
        "status": "ended",
        "customization": {"allowRecording": False},
        "settings": {"maxParticipants": 1000, "emptyTimeout": 300},
        "createdBy": "t-1",
        "createdAt": AT,
        "startedAt": None,
        "endedAt": AT,
        "activeEgressId": None,
        "ended": {"by": "api", "participantsDisconnected": 3, "wasRecording": True},
        outbox.FIELD: [{"id": "call:rooms.class_ended", "kind": "call"}],
        outbox.SINCE: AT,
    }


def test_a_stored_room_reads_as_a_record_with_its_key_as_text():
    doc = stored_room()
    room = records.Room.model_validate(doc)
    assert room.key == str(doc["_id"]) and isinstance(room.key, str)
    assert (room.org_id, room.room_id, room.lk_name, room.is_ended) == (
        doc["orgId"],
        "math-101",
        doc["lkName"],
        True,
    )
    assert room.ended == records.Ending(by="api", participants_disconnected=3, was_recording=True)
    assert room.customization == {"allowRecording": False} and len(room.pending_effects) == 1


def test_a_room_is_stored_under_the_same_field_names_and_never_writes_its_outbox():
    doc = stored_room()
    written = records.Room.model_validate(doc).model_dump(by_alias=True, exclude={"key"})
    kept = {k: v for k, v in doc.items() if k not in ("_id", outbox.FIELD, outbox.SINCE)}
    assert written == kept


def test_an_ended_by_livekit_is_stored_as_before():
    assert records.Ending(by="livekit").model_dump(by_alias=True, exclude_unset=True) == {"by": "livekit"}


def test_a_recording_report_writes_only_what_livekit_reported():
    report = records.RecordingReport(status="EGRESS_ACTIVE")
    assert report.model_dump(by_alias=True, exclude_unset=True) == {"status": "EGRESS_ACTIVE"}
    ended = records.RecordingReport(status="EGRESS_COMPLETE", ended_at=AT, size=10, duration=1.5)
    assert ended.model_dump(by_alias=True, exclude_unset=True) == {
        "status": "EGRESS_COMPLETE",
        "endedAt": AT,
        "size": 10,
        "duration": 1.5,
    }
