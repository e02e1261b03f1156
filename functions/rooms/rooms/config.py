"""Settings of the live-classroom function: where LiveKit and the classroom page live."""

# No `from __future__ import annotations`: pydantic would evaluate each string annotation as it
# creates every model class below, a cost every cold start pays.

from functools import cache

from pydantic import AliasChoices, Field
from verriflo.settings import EnvSettings, SettingsConfigDict


class LiveSettings(EnvSettings):
    """LiveKit endpoint, credential secret, token lifetime, page URL and recordings bucket."""

    model_config = SettingsConfigDict(extra="ignore")

    livekit_url: str = Field(
        default="http://127.0.0.1:7880", description="LiveKit server or Cloud project URL"
    )
    livekit_secret_name: str = Field(
        default="verriflo/livekit", description='Secrets Manager JSON {"apiKey": ..., "apiSecret": ...}'
    )
    livekit_timeout_s: float = Field(default=5.0, gt=0, le=30)
    live_ui_url: str = Field(
        default="http://127.0.0.1:4566/verriflo-live",
        description="base URL of the classroom page (CloudFront in AWS)",
    )
    join_token_ttl_s: int = Field(default=4 * 3600, ge=300, le=86_400)
    download_url_ttl_s: int = Field(default=3600, ge=60, le=43_200)
    aws_region: str = Field(
        default="us-east-1",
        validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION"),
        description="region of the recordings bucket, told to LiveKit Egress",
    )
    webhook_event_ttl_s: int = Field(
        default=7 * 86_400, ge=3600, description="how long event ids are remembered"
    )
    webhook_lease_s: int = Field(
        default=90,
        ge=10,
        le=900,
        description="how long a delivery being handled holds its event id (beyond the function's timeout)",
    )
    reconcile_grace_s: int = Field(
        default=600,
        ge=60,
        description="the rooms sweep takes LiveKit's word on a participant whose webhook is this late",
    )


@cache
def live_settings() -> LiveSettings:
    """The live-classroom settings, read once per process."""
    return LiveSettings()
