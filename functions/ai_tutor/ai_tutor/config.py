"""Settings of the AI tutor: limits of a question, how context is gathered, how summaries group."""

# No `from __future__ import annotations`: pydantic would evaluate each string annotation as it
# creates every model class below, a cost every cold start pays.

from functools import cache

from pydantic import AliasChoices, Field
from verriflo.settings import EnvSettings, SettingsConfigDict


class TutorSettings(EnvSettings):
    """Read from TUTOR_* environment variables (the LiveKit secret name is shared with rooms)."""

    model_config = SettingsConfigDict(env_prefix="TUTOR_", extra="ignore")

    livekit_secret_name: str = Field(
        default="verriflo/livekit",
        validation_alias=AliasChoices("TUTOR_LIVEKIT_SECRET_NAME", "LIVEKIT_SECRET_NAME"),
        description="Secrets Manager JSON {apiKey, apiSecret}: verifies the classroom page's join token",
    )
    page_origin: str = Field(
        default="*", description="Access-Control-Allow-Origin for the classroom page's calls"
    )
    participant_rate_limit: int = Field(
        default=30,
        ge=1,
        description="requests per window of one classroom participant (org rate limit "
        "'ai-tutor-participant' overrides; never more than half the org's 'ai-tutor' budget)",
    )
    participant_rate_window_s: int = Field(default=60, ge=1, le=86_400)
    max_text_chars: int = Field(default=2000, ge=1, le=20_000, description="longest question accepted")
    history_turns: int = Field(
        default=6, ge=0, le=50, description="the student's earlier exchanges sent to a model"
    )
    earlier_min_score: float = Field(
        default=0.8, ge=0, le=1, description="similarity at which an earlier exchange of the class is cited"
    )
    group_min_score: float = Field(
        default=0.72,
        ge=0,
        le=1,
        description="similarity at which two questions count as the same (topQueries)",
    )
    top_queries: int = Field(default=10, ge=1, le=50)
    answer_excerpt_chars: int = Field(default=600, ge=80, le=4000, description="answer kept per top query")
    list_limit: int = Field(default=100, ge=1, le=500)


@cache
def tutor_settings() -> TutorSettings:
    """The tutor settings, read once per process."""
    return TutorSettings()
