"""Shared fixtures: the Lambda context, sample events, and (for integration tests) real servers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from support import LambdaContext


@pytest.fixture
def lambda_context() -> LambdaContext:
    return LambdaContext(aws_request_id=str(uuid.uuid4()))


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto in-process for every AWS call, with the secrets and bus the functions expect."""
    import moto
    from verriflo import aws, secrets, settings

    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_NAMESPACE": "VerrifloTest",
        "POWERTOOLS_SERVICE_NAME": "verriflo-test",
        "EVENT_BUS_NAME": "verriflo-test-events",
        "MEDIA_BUCKET": "verriflo-test-media",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    settings.reset_settings()
    aws.reset_clients()
    secrets.reset_secrets()
    with moto.mock_aws():
        import boto3

        sm = boto3.client("secretsmanager")
        sm.create_secret(Name="verriflo/jwt-secret", SecretString="test-jwt-secret-" + uuid.uuid4().hex)
        sm.create_secret(Name="verriflo/dispatch-secret", SecretString="test-dispatch-" + uuid.uuid4().hex)
        boto3.client("events").create_event_bus(Name="verriflo-test-events")
        boto3.client("s3").create_bucket(Bucket="verriflo-test-media")
        yield
    aws.reset_clients()
    secrets.reset_secrets()
    settings.reset_settings()
