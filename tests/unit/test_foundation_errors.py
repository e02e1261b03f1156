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


def test_two_budgets_list_both_policies_and_the_trio_of_the_tighter():
    from verriflo.ratelimit import combined_headers

    own = Decision(True, "ai-tutor-participant", 30, 2, 60, 17, 1_800_000_000)
    shared = Decision(True, "ai-tutor", 600, 500, 60, 17, 1_800_000_000)
    headers = combined_headers(own, shared)
    assert headers["RateLimit-Policy"] == '"ai-tutor-participant";q=30;w=60, "ai-tutor";q=600;w=60'
    assert headers["RateLimit"] == '"ai-tutor-participant";r=2;t=17, "ai-tutor";r=500;t=17'
    assert headers["X-RateLimit-Limit"] == "30" and headers["X-RateLimit-Remaining"] == "2"


def test_a_members_budget_is_at_most_half_the_orgs_over_the_same_window():
    from verriflo.auth import OrgContext
    from verriflo.ratelimit import member_budget

    def org(**limits):
        return OrgContext("org_1", "Org", "prepaid", "room_token", "s-1", rate_limits=limits)

    default = (30, 60)
    assert member_budget(org(**{"ai-tutor": {"limit": 600, "window": 60}}), "ai-tutor", default) == (30, 60)
    assert member_budget(org(**{"ai-tutor": {"limit": 20, "window": 60}}), "ai-tutor", default) == (10, 60)
    # 1000 an hour is about 16 a minute: a member gets 8 a minute.
    assert member_budget(org(**{"ai-tutor": {"limit": 1000, "window": 3600}}), "ai-tutor", default) == (8, 60)
    own = {"ai-tutor-participant": {"limit": 5, "window": 10}, "ai-tutor": {"limit": 600, "window": 60}}
    assert member_budget(org(**own), "ai-tutor", default) == (5, 10)
    assert member_budget(org(**{"ai-tutor": {"limit": 1, "window": 60}}), "ai-tutor", default) == (1, 60)
