"""The balance document of API.md, computed from a balance in milli-credits (no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime

from billing import logic


def test_a_healthy_prepaid_balance():
    b = logic.describe("prepaid", 2_500_500)
    assert (b.type, b.status, b.is_overconsumed) == ("PREPAID", "ACTIVE", False)
    assert b.remaining_credits == 2500.5 and b.display_credits == 2500.5
    assert b.credit_rate == 0.5 and b.estimated_value == 1250.25 and b.currency == "BDT"


def test_a_prepaid_balance_below_the_class_minimum_says_so():
    assert "below the 100 needed" in logic.describe("prepaid", 99_999).message


def test_a_negative_prepaid_balance_is_overconsumed_and_shows_zero():
    b = logic.describe("prepaid", -1_234)
    assert b.status == "OVERCONSUMED" and b.is_overconsumed and b.remaining_credits == -1.234
    assert b.display_credits == 0 and b.estimated_value == -0.61


def test_postpaid_is_overconsumed_only_past_its_credit_limit():
    start = datetime(2026, 11, 1, tzinfo=UTC)
    limit = {"credit_limit_milli": 80_000, "cycle_from": start}
    within = logic.describe("postpaid", -50_000, cycle="monthly", cycle_used_milli=50_000, **limit)
    assert (within.type, within.status, within.is_overconsumed) == ("POSTPAID", "ACTIVE", False)
    assert (within.cycle_usage_credits, within.credit_limit, within.available_credits) == (50, 80, 30)
    past = logic.describe("postpaid", -90_000, cycle="weekly", cycle_used_milli=90_000, **limit)
    assert (past.status, past.is_overconsumed, past.available_credits) == ("OVERCONSUMED", True, -10)
    assert "past the credit limit of 80.00" in past.message


def test_cycles_start_on_monday_or_the_first():
    at = datetime(2026, 11, 28, 15, tzinfo=UTC)  # a Saturday
    assert logic.cycle_start("weekly", at) == datetime(2026, 11, 23, tzinfo=UTC)
    assert logic.cycle_start("monthly", at) == datetime(2026, 11, 1, tzinfo=UTC)
