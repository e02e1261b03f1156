"""boto3 clients, created lazily and cached; endpoints come only from the environment.

boto3 honours AWS_ENDPOINT_URL (and AWS_ENDPOINT_URL_<SERVICE>) itself, which is how the same code
talks to AWS, LocalStack or moto.
"""

from __future__ import annotations

from functools import cache
from typing import Any


@cache
def _session() -> Any:
    import boto3

    return boto3.session.Session()


@cache
def client(service: str) -> Any:
    """A cached boto3 client for `service`."""
    from botocore.config import Config

    # S3 presigns with SigV4: SigV2 query signatures (botocore's default for some regions) cover no
    # Content-Length, so an upload URL would accept any size.
    extra = {"signature_version": "s3v4"} if service == "s3" else {}
    return _session().client(
        service,
        config=Config(
            retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=2, read_timeout=10, **extra
        ),
    )


def reset_clients() -> None:
    """Forget cached clients (tests switch between moto and LocalStack)."""
    client.cache_clear()
    _session.cache_clear()
