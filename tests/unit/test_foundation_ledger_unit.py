"""Ledger arithmetic: exact milli-credits, and the price list."""

from __future__ import annotations

from decimal import Decimal

from verriflo import ledger, pricing


def test_credits_convert_to_exact_milli_credits():
    assert ledger.to_milli(1) == 1000
    assert ledger.to_milli("0.0005") == 1
    assert ledger.to_milli(Decimal("2.4994")) == 2499
    assert ledger.from_milli(-1500) == -1.5


def test_price_list_matches_api_md_for_live_minutes():
    assert pricing.live_minutes(3) == Decimal(3)
    assert pricing.ai_tokens(600, 400) == Decimal("0.5")
    assert pricing.MIN_CREDITS_TO_START_CLASS == 100
