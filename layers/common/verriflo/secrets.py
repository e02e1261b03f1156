"""Secrets from AWS Secrets Manager via Powertools Parameters, cached in memory for a while."""

from __future__ import annotations

from functools import cache
from typing import Any

from verriflo import aws
from verriflo.errors import ServiceUnavailable
from verriflo.settings import secret_settings


@cache
def _provider() -> Any:
    from aws_lambda_powertools.utilities.parameters import SecretsProvider

    return SecretsProvider(boto3_client=aws.client("secretsmanager"))


def get_secret(name: str) -> str:
    """The secret string stored under `name`; raises ServiceUnavailable if it cannot be read."""
    from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

    try:
        value = _provider().get(name, max_age=secret_settings().secret_cache_s)
    except GetParameterError as exc:
        # The exception text names the secret, never its value; keep it off the response anyway.
        raise ServiceUnavailable("A required secret is not available.") from exc
    if isinstance(value, bytes):
        value = value.decode()
    return str(value)


def reset_secrets() -> None:
    """Forget cached secrets and the provider (tests rotate secrets and switch endpoints)."""
    if _provider.cache_info().currsize:
        _provider().clear_cache()
    _provider.cache_clear()
