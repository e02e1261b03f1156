"""Stored media is charged per GB-day from its measured size, once per video and day whatever the
retries, counted for its room; and a room's credits are the ledger's for the room, per service, the
same total as the billing usage report. Against the real MongoDB-wire server and Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from billing import storage
from billing.handler import handler as billing
from livekit_support import LiveKit, fund, rooms_event
from rooms.handler import handler as rooms
from support import api_event, call, load_event
from verriflo import ledger, media

pytest_plugins = ("livekit_support",)

DAY = datetime(2030, 5, 14, 3, 0, tzinfo=UTC)  # the sweep's clock, injected


def _stored(org_id: str, size: int, **kw) -> media.Video:
    video = media.insert_video(org_id, title="clip", size_bytes=size, content_type="video/mp4", **kw)
    media.record_stored_bytes(video, size)  # what the transcoder measured in S3
    return video


def _storage_entries(org_id: str) -> list[ledger.LedgerEntry]:
    from verriflo import db

    return [
        ledger.LedgerEntry.model_validate(d)
        for d in db.collection(ledger.LEDGER).find({"orgId": org_id, "service": "storage"}).sort("entryId", 1)
    ]


def test_stored_media_is_charged_per_gb_day_once_a_day(org, other_org):
    video = _stored(org.id, 2_500_000_000)
    _stored(other_org.id, 1_000_000_000)
    media.insert_video(org.id, title="reserved", size_bytes=10**9, content_type="video/mp4")  # never stored
    before = ledger.balance_milli(org.id)
    assert storage.meter_storage(DAY) == 2
    assert storage.meter_storage(DAY + timedelta(hours=5)) == 0  # the same day again: nothing
    (entry,) = _storage_entries(org.id)
    assert entry.entry_id == f"storage:{video.id}:2030-05-14" and entry.unit == "gb-day"
    assert entry.quantity == 2.5 and entry.amount_milli == 250  # 2.5 GB x 0.1 credit
    assert ledger.balance_milli(org.id) == before - 250
    assert [e.amount_milli for e in _storage_entries(other_org.id)] == [100]
    assert storage.meter_storage(DAY + timedelta(days=1)) == 2  # the next day is charged again
    assert len(_storage_entries(org.id)) == 2
    assert ledger.drift_milli(org.id) == 0


def test_a_rerun_after_a_charge_whose_mark_was_lost_charges_nothing_twice(org, monkeypatch):
    _stored(org.id, 10**9)
    monkeypatch.setattr(media, "storage_metered", lambda video, day: None)  # the run died after charging
    assert storage.meter_storage(DAY, batch=10) == 1
    monkeypatch.undo()
    assert storage.meter_storage(DAY) == 0  # found again, but its entry id is already in the ledger
    assert [e.amount_milli for e in _storage_entries(org.id)] == [100]


def test_deleted_media_is_no_longer_charged(org):
    video = _stored(org.id, 10**9)
    storage.meter_storage(DAY)
    media.delete_video(org.id, video.id)
    assert storage.meter_storage(DAY + timedelta(days=1)) == 0
    assert len(_storage_entries(org.id)) == 1


def test_the_sweep_meters_storage(org, lambda_context, monkeypatch):
    from billing import sweep

    _stored(org.id, 10**9)
    monkeypatch.setattr(sweep, "now", lambda: DAY)
    assert sweep.handler(load_event("billing/sweep.json"), lambda_context)["storageCharges"] == 1
    assert sweep.handler(load_event("billing/sweep.json"), lambda_context)["storageCharges"] == 0


def test_a_rooms_total_is_the_ledgers_for_the_room_as_the_usage_report_shows(
    org, livekit: LiveKit, lambda_context
):
    fund(org.id, 1000)
    body = {"roomId": "bio", "title": "Biology", "participant": {"uid": "t-1", "name": "Ada"}}
    assert (
        call(rooms, api_event("rooms/create.json", headers=org.headers, body=body), lambda_context).status
        == 200
    )
    for service, credits in (("live", "12"), ("ai_tutor", "0.75"), ("transcode", "0.6")):
        ledger.record_usage(
            ledger.UsageEvent(
                entry_id=f"{service}-bio",
                org_id=org.id,
                service=service,
                credits=Decimal(credits),
                room_id="bio",
            )
        )
    _stored(org.id, 3 * 10**9, kind="recording", room_id="bio")
    storage.meter_storage(ledger.now())
    summary = call(rooms, rooms_event("summary", org.headers, room_id="bio"), lambda_context).data
    assert summary["creditsByService"] == {"ai_tutor": 0.75, "live": 12.0, "storage": 0.3, "transcode": 0.6}
    assert summary["totalCredits"] == 13.65
    report = call(
        billing,
        api_event("billing/usage.json", headers=org.headers, query={"groupBy": "room"}),
        lambda_context,
    ).data
    (row,) = [r for r in report["rows"] if r["key"] == "bio"]
    assert row["credits"] == summary["totalCredits"]
