"""The usage ledger against the real MongoDB-wire server: exactly once, exact under concurrency."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from verriflo import db, ledger
from verriflo.errors import InsufficientCredits


def _usage(org_id: str, entry_id: str, credits: float = 1) -> ledger.UsageEvent:
    return ledger.UsageEvent(
        entry_id=entry_id,
        org_id=org_id,
        service="live",
        credits=credits,
        quantity=credits,
        unit="participant-minute",
        room_id="math-101",
    )


def test_the_same_event_is_counted_once(org):
    ledger.grant(ledger.UsageEvent(entry_id="g1", org_id=org.id, service="grant", credits=10))
    first = ledger.record_usage(_usage(org.id, "evt-1", 3))
    again = ledger.record_usage(_usage(org.id, "evt-1", 3))
    assert first.duplicate is False and again.duplicate is True
    assert ledger.balance_milli(org.id) == 7000
    assert db.collection(ledger.LEDGER).count_documents({"orgId": org.id}) == 2


def test_balance_equals_the_sum_of_entries_under_concurrent_debits_and_grants(org):
    def work(i: int) -> None:
        if i % 5 == 0:
            ledger.grant(ledger.UsageEvent(entry_id=f"g-{i}", org_id=org.id, service="grant", credits=2))
        ledger.record_usage(_usage(org.id, f"u-{i}", 1))
        ledger.record_usage(_usage(org.id, f"u-{i}", 1))  # a replay of the same event

    with ThreadPoolExecutor(max_workers=12) as pool:
        list(pool.map(work, range(60)))
    entries = list(db.collection(ledger.LEDGER).find({"orgId": org.id}))
    assert len(entries) == 60 + 12
    total = sum(e["amountMilli"] if e["kind"] == "grant" else -e["amountMilli"] for e in entries)
    assert ledger.balance_milli(org.id) == total == (12 * 2 - 60) * 1000


def test_paid_up_front_work_never_overspends(org):
    ledger.grant(ledger.UsageEvent(entry_id="g", org_id=org.id, service="grant", credits=10))

    def spend(i: int) -> bool:
        try:
            ledger.record_usage(_usage(org.id, f"ai-{i}", 1), allow_negative=False)
            return True
        except InsufficientCredits:
            return False

    with ThreadPoolExecutor(max_workers=10) as pool:
        results = list(pool.map(spend, range(25)))
    assert sum(results) == 10
    assert ledger.balance_milli(org.id) == 0


def test_live_usage_may_go_negative(org):
    ledger.record_usage(_usage(org.id, "live-1", 5))
    assert ledger.balance_milli(org.id) == -5000


def test_require_credits_raises_402_below_the_minimum(org):
    ledger.grant(ledger.UsageEvent(entry_id="g", org_id=org.id, service="grant", credits=99))
    with pytest.raises(InsufficientCredits) as caught:
        ledger.require_credits(org.id, 100, "Insufficient credits. Minimum 100 required to start a class.")
    assert caught.value.status == 402
    ledger.grant(ledger.UsageEvent(entry_id="g2", org_id=org.id, service="grant", credits=1))
    assert ledger.require_credits(org.id, 100) == 100_000
