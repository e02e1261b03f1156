"""Settings of the health function: what readiness checks besides the stores."""

# No `from __future__ import annotations`: pydantic would evaluate each string annotation as it
# creates the settings class below, a cost every cold start pays.

from functools import cache

from pydantic import Field
from verriflo.settings import EnvSettings, SettingsConfigDict


def _names(value: str) -> list[str]:
    return [part.strip() for part in value.split(",") if part.strip()]


class HealthSettings(EnvSettings):
    """What readiness checks besides the stores (the template sets each from the stack's resources)."""

    model_config = SettingsConfigDict(extra="ignore")

    media_bucket: str = "verriflo-media"
    check_timeout_s: float = Field(default=3.0, gt=0)
    livekit_url: str = ""
    livekit_secret_name: str = ""
    # Comma-separated: the secrets, queues and state machines the functions use.
    health_secret_names: str = ""
    health_queue_urls: str = ""
    health_state_machine_arns: str = ""

    @property
    def secret_names(self) -> list[str]:
        return _names(self.health_secret_names)

    @property
    def queue_urls(self) -> list[str]:
        return _names(self.health_queue_urls)

    @property
    def state_machine_arns(self) -> list[str]:
        return _names(self.health_state_machine_arns)


@cache
def health_settings() -> HealthSettings:
    """The health settings, read once per process."""
    return HealthSettings()
