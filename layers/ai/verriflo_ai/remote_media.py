"""Calling the offline media capabilities, small functions of their own (functions/ai_media), invoked
synchronously through Lambda `invoke` when settings say `lambda` (AI_SPEECH_PROVIDER,
AI_VISION_PROVIDER, AI_CHART_PROVIDER): their libraries are too large to sit beside the AI layer in
the calling function (Lambda's 250 MB), so each lives in its own function and layer.

A refusal from the function (`{"error": {"status", "code", "message"}}`) is raised here as the same
error, so the client's answer does not depend on where the work ran.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from verriflo.errors import (
    PayloadTooLarge,
    ServiceUnavailable,
    UnsupportedMediaType,
    UpstreamError,
    ValidationFailed,
    VerrifloError,
)

from verriflo_ai.settings import ai_settings

_BY_STATUS: dict[int, type[VerrifloError]] = {
    400: ValidationFailed,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    503: ServiceUnavailable,
}


@cache
def _client() -> Any:
    import boto3
    from botocore.config import Config

    # One attempt: a transcription that timed out is not retried behind the caller's back.
    return boto3.session.Session().client(
        "lambda",
        config=Config(
            retries={"max_attempts": 1, "mode": "standard"},
            connect_timeout=2,
            read_timeout=ai_settings().provider_timeout_s,
        ),
    )


def reset_client() -> None:
    """Forget the cached client (tests switch endpoints)."""
    _client.cache_clear()


def invoke(function_name: str | None, payload: dict[str, Any], what: str) -> dict[str, Any]:
    """The function's answer; its refusal raised as the same error, a failure as 503/502."""
    if not function_name:
        raise ServiceUnavailable(f"{what} is not configured in this deployment.")
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        response = _client().invoke(
            FunctionName=function_name,
            InvocationType="RequestResponse",
            Payload=json.dumps(payload, separators=(",", ":")).encode(),
        )
        body = response["Payload"].read()
    except (BotoCoreError, ClientError) as exc:
        raise ServiceUnavailable(f"{what} is unavailable right now.") from exc
    return decode_reply(body, response.get("FunctionError"), what)


def decode_reply(body: bytes, function_error: str | None, what: str) -> dict[str, Any]:
    """A media function's reply as data, or the error it stands for."""
    if function_error:
        raise UpstreamError(f"{what} failed.")
    try:
        reply = json.loads(body)
    except ValueError as exc:
        raise UpstreamError(f"{what} failed.") from exc
    if not isinstance(reply, dict):
        raise UpstreamError(f"{what} failed.")
    error = reply.get("error")
    if isinstance(error, dict):
        kind = _BY_STATUS.get(int(error.get("status", 502)), UpstreamError)
        raise kind(str(error.get("message") or kind.default_message))
    return reply
