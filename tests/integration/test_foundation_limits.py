"""Rate limits per org and route group: exact under concurrency, with the documented headers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from support import api_event, call
from verriflo import auth, orgs, ratelimit


def test_the_budget_is_enforced_with_429_and_headers(org, lambda_context):
    from identity.handler import handler

    orgs.set_rate_limit(org.id, "identity", orgs.RateLimit(limit=3, window=60))
    auth.clear_cache()
    replies = [
        call(handler, api_event("identity/whoami.json", headers=org.headers), lambda_context)
        for _ in range(4)
    ]
    assert [r.status for r in replies] == [200, 200, 200, 429]
    assert replies[0].headers["X-RateLimit-Limit"] == "3"
    assert replies[2].headers["X-RateLimit-Remaining"] == "0"
    limited = replies[3]
    assert limited.body["error"] == "RATE_LIMITED"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    assert limited.headers["RateLimit-Policy"] == '"identity";q=3;w=60'


def test_budgets_are_per_org(org, other_org, lambda_context):
    from identity.handler import handler

    orgs.set_rate_limit(org.id, "identity", orgs.RateLimit(limit=1, window=60))
    auth.clear_cache()
    assert call(handler, api_event("identity/whoami.json", headers=org.headers), lambda_context).status == 200
    assert call(handler, api_event("identity/whoami.json", headers=org.headers), lambda_context).status == 429
    assert (
        call(handler, api_event("identity/whoami.json", headers=other_org.headers), lambda_context).status
        == 200
    )


def test_concurrent_requests_never_exceed_the_budget(org):
    ctx = auth.OrgContext(
        org.id, "Acme", "prepaid", "api_key", "k", rate_limits={"g": {"limit": 50, "window": 60}}
    )
    with ThreadPoolExecutor(max_workers=16) as pool:
        decisions = list(pool.map(lambda _: ratelimit.hit(ctx, "g"), range(200)))
    assert sum(d.allowed for d in decisions) == 50


def test_default_budget_comes_from_settings_when_the_org_has_none(org, monkeypatch):
    from verriflo import settings

    monkeypatch.setenv("RATE_LIMIT_DEFAULT", "7")
    settings.reset_settings()
    ctx = auth.authenticate(org.headers)
    assert ratelimit.budget(ctx, "anything") == (7, 60)
