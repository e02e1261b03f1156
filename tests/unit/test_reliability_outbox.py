"""The outbox's pieces without a database: effects carry deterministic ids, and recording them
joins the state change's own update document (one single-document update, atomic)."""

from __future__ import annotations

from decimal import Decimal

from verriflo import ledger, outbox


def test_effects_are_recorded_in_the_same_update_as_the_state_change():
    update = {"$set": {"status": "ended"}, "$push": {"log": "x"}}
    effects = [outbox.call("rooms.class_ended", org_id="org_1", room_id="r")]

    merged = outbox.with_effects(update, effects)

    assert merged["$set"]["status"] == "ended" and outbox.SINCE in merged["$set"]
    assert merged["$push"] == {"log": "x", outbox.FIELD: {"$each": effects}}
    assert update == {"$set": {"status": "ended"}, "$push": {"log": "x"}}  # the caller's dict is kept
    assert outbox.with_effects(update, []) is update


def test_a_redo_of_an_effect_is_the_same_effect():
    first = outbox.event("room.finished", "org_1", {"roomId": "r"}, event_id="room.finished.RM_1")
    again = outbox.event("room.finished", "org_1", {"roomId": "r"}, event_id="room.finished.RM_1")
    assert first["id"] == again["id"] == "event:room.finished.RM_1"
    assert first["event"]["id"] == "room.finished.RM_1"
    usage = ledger.UsageEvent(
        entry_id="transcode:vid_1", org_id="org_1", service="transcode", credits=Decimal("0.4")
    )
    charge = outbox.charge(usage)
    assert charge["id"] == "charge:transcode:vid_1"
    assert ledger.UsageEvent.model_validate(charge["usage"]) == usage  # what the drain records
