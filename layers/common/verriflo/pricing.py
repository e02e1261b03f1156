"""What things cost, in credits: the one price list every service meters against.

1 credit = 1 participant-minute of live class (API.md). The other rates are ours; operators can
override each with an environment variable (e.g. PRICE_AI_PER_1K_TOKENS=0.5).
"""

# No `from __future__ import annotations`: pydantic would evaluate each string annotation as it
# creates every model class below, a cost every cold start pays.

from decimal import Decimal
from functools import cache

from pydantic import Field

from verriflo.settings import EnvSettings, SettingsConfigDict

MIN_CREDITS_TO_START_CLASS = 100
CLASS_START_MESSAGE = "Insufficient credits. Minimum 100 required to start a class."


class Prices(EnvSettings):
    """Credits per unit of each metered service."""

    model_config = SettingsConfigDict(env_prefix="PRICE_", extra="ignore")

    live_per_participant_minute: Decimal = Decimal(1)
    ai_per_1k_tokens: Decimal = Field(default=Decimal("0.5"))
    transcode_per_output_minute: Decimal = Field(default=Decimal("0.2"))
    storage_per_gb_day: Decimal = Field(default=Decimal("0.1"))
    captions_per_minute: Decimal = Field(default=Decimal("0.1"), description="automatic captions, per minute")
    credit_value_bdt: Decimal = Field(default=Decimal("0.5"), description="API.md's creditRate")


@cache
def prices() -> Prices:
    """The price list, read once per process."""
    return Prices()


def live_minutes(participant_minutes: Decimal | float) -> Decimal:
    """Credits for live participant-minutes."""
    return prices().live_per_participant_minute * Decimal(str(participant_minutes))


def ai_tokens(input_tokens: int, output_tokens: int) -> Decimal:
    """Credits for AI tokens in and out."""
    return prices().ai_per_1k_tokens * Decimal(input_tokens + output_tokens) / Decimal(1000)


def transcode_minutes(output_minutes: Decimal | float) -> Decimal:
    """Credits for minutes of transcoded output (per rendition ladder)."""
    return prices().transcode_per_output_minute * Decimal(str(output_minutes))


def storage_gb_days(gb_days: Decimal | float) -> Decimal:
    """Credits for stored media, per GB (10^9 bytes) kept for a day."""
    return prices().storage_per_gb_day * Decimal(str(gb_days))


def caption_minutes(minutes: Decimal | float) -> Decimal:
    """Credits for minutes of video captioned automatically."""
    return prices().captions_per_minute * Decimal(str(minutes))
