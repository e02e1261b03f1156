"""Settings come from the environment, validated, with values given in code taking precedence."""

from __future__ import annotations

import pytest
from pydantic import AliasChoices, Field, ValidationError
from verriflo.settings import EnvSettings, SettingsConfigDict


class Example(EnvSettings):
    model_config = SettingsConfigDict(env_prefix="EXAMPLE_", extra="ignore")

    window: int = Field(default=32, ge=16)
    names: list[str] = Field(default_factory=list)
    region: str = Field(
        default="us-east-1", validation_alias=AliasChoices("AWS_REGION", "AWS_DEFAULT_REGION")
    )


def test_fields_are_read_from_prefixed_variables_case_insensitively(monkeypatch):
    monkeypatch.setenv("example_window", "64")
    monkeypatch.setenv("EXAMPLE_NAMES", '["a", "b"]')
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    settings = Example()
    assert (settings.window, settings.names, settings.region) == (64, ["a", "b"], "eu-west-1")


def test_defaults_apply_and_code_wins_over_the_environment(monkeypatch):
    monkeypatch.delenv("EXAMPLE_WINDOW", raising=False)
    monkeypatch.setenv("AWS_REGION", "ap-south-1")
    assert Example().window == 32
    assert Example(region="us-west-2").region == "us-west-2"


def test_invalid_values_are_refused(monkeypatch):
    monkeypatch.setenv("EXAMPLE_WINDOW", "3")
    with pytest.raises(ValidationError):
        Example()
