"""Storage metering: each day, every video and recording S3 holds is charged per GB-day from its
real size (`storedBytes`, what the transcoder measured in S3: the source plus the HLS outputs).

Retry-safe: the ledger entry id is `storage:<videoId>:<day>`, so a sweep run again the same day, or
a run that died between the charge and the video's `storageMeteredOn` mark, charges nothing twice.
A video kept part of a day (a recording is deleted 6 hours after class) pays for the day started.
Storage is usage that already happened, so it is always recorded (like live minutes), and it counts
for the video's room (a recording's), so a room's total includes its recording's storage.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from verriflo import ledger, media, pricing
from verriflo.observability import logger

GB = Decimal(10**9)


def storage_entry(video: media.Video, day: str) -> ledger.UsageEvent:
    """The charge for one day of one video's bytes."""
    gb = Decimal(video.stored_bytes or 0) / GB
    return ledger.UsageEvent(
        entry_id=f"storage:{video.id}:{day}",
        org_id=video.org_id,
        service="storage",
        credits=pricing.storage_gb_days(gb),
        quantity=float(round(gb, 6)),
        unit="gb-day",
        room_id=video.room_id,
        meta={"videoId": video.id, "bytes": video.stored_bytes, "day": day},
        occurred_at=datetime.fromisoformat(day).replace(tzinfo=UTC),
    )


def meter_storage(at: datetime, batch: int = 500) -> int:
    """Charge the UTC day of `at` for every stored video not charged for it yet; returns how many
    charges are new."""
    day = at.astimezone(UTC).date().isoformat()
    charged, after = 0, None
    while found := media.unmetered_storage(day, after, batch):
        for video in found:
            if not ledger.record_usage(storage_entry(video, day)).duplicate:
                charged += 1
            media.storage_metered(video, day)
        after = found[-1].id
    logger.info("billing.storage_metered", extra={"day": day, "videos": charged})
    return charged
