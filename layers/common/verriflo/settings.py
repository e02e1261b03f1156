"""Validated settings, one class per concern, each read lazily behind a cached getter.

`EnvSettings` is a pydantic model filled from the environment. It stands in for pydantic-settings'
`BaseSettings`, whose import (it loads asyncio and a dozen settings sources we never use) cost about
a third of a function's cold start here; it keeps the same spelling (`model_config =
SettingsConfigDict(env_prefix=..., extra="ignore")`, `validation_alias=AliasChoices(...)`), matches
variable names case-insensitively like pydantic-settings, and reads JSON for list and dict fields.
"""

# No `from __future__ import annotations`: pydantic would evaluate each string annotation as it
# creates every model class below, a cost every cold start pays.

import json
import os
from functools import cache
from typing import Any

from pydantic import AliasChoices, BaseModel, ConfigDict, Field


def SettingsConfigDict(**config: Any) -> ConfigDict:  # noqa: N802 - mirrors pydantic-settings' name
    """Model configuration for an EnvSettings class; `env_prefix` names its variables' prefix.

    Validators are built on first use (`defer_build`), not at import: a function only pays for the
    settings it reads, which keeps cold starts short.
    """
    return ConfigDict(**{"defer_build": True, **config})  # type: ignore[typeddict-item]


class EnvSettings(BaseModel):
    """A settings class: each field is read from the environment variable of its (prefixed) name."""

    model_config = SettingsConfigDict(extra="ignore", validate_by_name=True, validate_by_alias=True)

    def __init__(self, **values: Any) -> None:
        super().__init__(**(self._from_environ(skip=set(values)) | values))

    @classmethod
    def _from_environ(cls, skip: set[str]) -> dict[str, Any]:
        environ = {key.upper(): value for key, value in os.environ.items()}
        prefix = str(cls.model_config.get("env_prefix", ""))
        found: dict[str, Any] = {}
        for name, field in cls.model_fields.items():
            if name in skip:  # values given in code win over the environment
                continue
            alias = field.validation_alias
            if isinstance(alias, AliasChoices):
                names = [c for c in alias.choices if isinstance(c, str)]
            else:
                names = [alias] if isinstance(alias, str) else [prefix + name]
            for candidate in names:
                raw = environ.get(candidate.upper())
                if raw is None:
                    continue
                # Fields with an alias are filled by it, others by name; complex values come as JSON.
                key = candidate if isinstance(alias, (str, AliasChoices)) else name
                found[key] = json.loads(raw) if raw[:1] in ("[", "{") else raw  # "" is a value, not JSON
                break
        return found


class StoreSettings(EnvSettings):
    """Where MongoDB and Redis live and how long we wait for them."""

    model_config = SettingsConfigDict(extra="ignore")

    mongodb_uri: str = "mongodb://127.0.0.1:27017/verriflo"
    mongodb_database: str | None = Field(default=None, description="defaults to the URI's database")
    mongodb_timeout_ms: int = Field(default=2000, ge=50)
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_timeout_s: float = Field(default=1.0, gt=0)


class ApiSettings(EnvSettings):
    """Limits and behaviour shared by every HTTP function."""

    model_config = SettingsConfigDict(extra="ignore")

    stage: str = "local"
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    auth_cache_ttl_s: float = Field(default=30.0, ge=0)
    rate_limit_default: int = Field(default=600, ge=1, description="requests per window per org and group")
    rate_limit_window_s: int = Field(default=60, ge=1)
    retry_after_s: int = Field(default=5, ge=1, description="Retry-After sent with 503")
    console_origin: str = Field(default="", description="the Console's origin: its browser may read answers")


class SecretSettings(EnvSettings):
    """Names of secrets in AWS Secrets Manager; the values never live in the environment."""

    model_config = SettingsConfigDict(extra="ignore")

    jwt_secret_name: str = "verriflo/jwt-secret"  # noqa: S105 - a secret's name, not its value
    dispatch_secret_name: str = "verriflo/dispatch-secret"  # noqa: S105 - a name
    jwt_ttl_s: int = Field(default=3600, ge=60, le=86_400)
    jwt_issuer: str = "verriflo"
    jwt_audience: str = "verriflo-dashboard"
    secret_cache_s: int = Field(default=300, ge=0)


class EventSettings(EnvSettings):
    """Where domain events go."""

    model_config = SettingsConfigDict(extra="ignore")

    event_bus_name: str = "verriflo-events"
    event_source: str = "verriflo"


@cache
def store_settings() -> StoreSettings:
    """The store settings, read once per process."""
    return StoreSettings()


@cache
def api_settings() -> ApiSettings:
    """The API settings, read once per process."""
    return ApiSettings()


@cache
def secret_settings() -> SecretSettings:
    """The secret names, read once per process."""
    return SecretSettings()


@cache
def event_settings() -> EventSettings:
    """The event bus settings, read once per process."""
    return EventSettings()


def reset_settings() -> None:
    """Forget every cached settings object (tests change the environment between cases)."""
    for getter in (store_settings, api_settings, secret_settings, event_settings):
        getter.cache_clear()
