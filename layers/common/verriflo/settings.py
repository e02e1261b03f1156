"""Validated settings, one class per concern, each read lazily behind a cached getter."""

from __future__ import annotations

from functools import cache

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class StoreSettings(BaseSettings):
    """Where MongoDB and Redis live and how long we wait for them."""

    model_config = SettingsConfigDict(extra="ignore")

    mongodb_uri: str = "mongodb://127.0.0.1:27017/verriflo"
    mongodb_database: str | None = Field(default=None, description="defaults to the URI's database")
    mongodb_timeout_ms: int = Field(default=2000, ge=50)
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_timeout_s: float = Field(default=1.0, gt=0)


class ApiSettings(BaseSettings):
    """Limits and behaviour shared by every HTTP function."""

    model_config = SettingsConfigDict(extra="ignore")

    stage: str = "local"
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    auth_cache_ttl_s: float = Field(default=30.0, ge=0)
    rate_limit_default: int = Field(default=600, ge=1, description="requests per window per org and group")
    rate_limit_window_s: int = Field(default=60, ge=1)
    retry_after_s: int = Field(default=5, ge=1, description="Retry-After sent with 503")


class SecretSettings(BaseSettings):
    """Names of secrets in AWS Secrets Manager; the values never live in the environment."""

    model_config = SettingsConfigDict(extra="ignore")

    jwt_secret_name: str = "verriflo/jwt-secret"
    dispatch_secret_name: str = "verriflo/dispatch-secret"
    jwt_ttl_s: int = Field(default=3600, ge=60, le=86_400)
    jwt_issuer: str = "verriflo"
    jwt_audience: str = "verriflo-dashboard"
    secret_cache_s: int = Field(default=300, ge=0)


class EventSettings(BaseSettings):
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
