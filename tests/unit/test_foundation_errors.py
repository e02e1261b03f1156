"""The error vocabulary and the rate-limit header formats, without any I/O."""

from __future__ import annotations

from verriflo.errors import ERROR_CLASSES, InsufficientCredits, ServiceUnavailable, ValidationFailed
from verriflo.ratelimit import Decision


def test_every_error_renders_the_api_envelope_with_an_upper_snake_code():
    for cls in ERROR_CLASSES:
        body = cls().envelope()
        assert body["success"] is False
        assert body["error"] == body["error"].upper() and " " not in body["error"]
        assert body["message"]
        assert 400 <= cls.status <= 599


def test_errors_keep_a_custom_message_and_headers():
    exc = ServiceUnavailable("db down", headers={"Retry-After": "5"})
    assert exc.envelope() == {"success": False, "message": "db down", "error": "SERVICE_UNAVAILABLE"}
    assert exc.headers == {"Retry-After": "5"} and exc.status == 503


def test_validation_error_is_400_and_credits_error_is_402():
    assert ValidationFailed.status == 400 and ValidationFailed.code == "VALIDATION_ERROR"
    assert InsufficientCredits.status == 402


def test_rate_limit_headers_follow_the_ietf_draft_and_the_x_ratelimit_trio():
    allowed = Decision(True, "rooms", 100, 42, 60, 17, 1_800_000_000)
    headers = allowed.headers()
    assert headers["RateLimit-Policy"] == '"rooms";q=100;w=60'
    assert headers["RateLimit"] == '"rooms";r=42;t=17'
    assert headers["X-RateLimit-Limit"] == "100"
    assert headers["X-RateLimit-Remaining"] == "42"
    assert headers["X-RateLimit-Reset"] == "1800000000"
    assert "Retry-After" not in headers
    denied = Decision(False, "rooms", 100, 0, 60, 17, 1_800_000_000).headers()
    assert denied["Retry-After"] == "17"
