"""Settings of the health function: what readiness checks besides the stores."""

# No `from __future__ import annotations`: pydantic would evaluate each string annotation as it
# creates the settings class below, a cost every cold start pays.

from functools import cache

from pydantic import Field
from verriflo.settings import EnvSettings, SettingsConfigDict


class HealthSettings(EnvSettings):
    """What readiness checks besides the stores."""

    model_config = SettingsConfigDict(extra="ignore")

    media_bucket: str = "verriflo-media"
    check_timeout_s: float = Field(default=3.0, gt=0)


@cache
def health_settings() -> HealthSettings:
    """The health settings, read once per process."""
    return HealthSettings()
