"""The billing API in-process against the real MongoDB-wire server: balance, usage, ledger, limits."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from billing.handler import handler
from support import api_event, call, make_org
from verriflo import ledger, orgs, pricing
from verriflo.errors import InsufficientCredits


def _grant(org_id: str, entry_id: str, credits: float, **kw) -> None:
    ledger.grant(ledger.UsageEvent(entry_id=entry_id, org_id=org_id, service="grant", credits=credits, **kw))


def _use(org_id: str, entry_id: str, service: str, credits: float, **kw) -> None:
    ledger.record_usage(
        ledger.UsageEvent(entry_id=entry_id, org_id=org_id, service=service, credits=credits, **kw)
    )


def test_a_prepaid_balance_has_every_field_api_md_names(org, lambda_context):
    _grant(org.id, "g", 1234.5)
    reply = call(handler, api_event("billing/balance.json", headers=org.headers), lambda_context)
    assert reply.status == 200
    assert reply.data == {
        "type": "PREPAID",
        "status": "ACTIVE",
        "remainingCredits": 1234.5,
        "displayCredits": 1234.5,
        "isOverconsumed": False,
        "creditRate": 0.5,
        "estimatedValue": 617.25,
        "currency": "BDT",
        "message": "1,234.50 credits remaining.",
        "billingCycle": None,
        "cycleStartedAt": None,
        "cycleUsageCredits": None,
        "creditLimit": None,
        "availableCredits": None,
    }
    assert "billing" in reply.headers["RateLimit-Policy"]


def test_live_usage_past_zero_shows_overconsumed(org, lambda_context):
    _grant(org.id, "g", 10)
    _use(org.id, "live-1", "live", 25, room_id="math-101")
    data = call(handler, api_event("billing/balance.json", headers=org.headers), lambda_context).data
    assert data["status"] == "OVERCONSUMED" and data["isOverconsumed"] is True
    assert data["remainingCredits"] == -15 and data["displayCredits"] == 0 and data["estimatedValue"] == -7.5
    assert "overconsumed by 15.00" in data["message"]


def _postpaid(limit: float, capsys) -> tuple[str, dict]:
    """A postpaid org made by the operators' tool with this credit limit, and its key's headers."""
    from verriflo_tools import cli

    argv = ["--json", "org", "create", "Postpaid Uni", "--plan", "postpaid", "--billing-cycle", "weekly"]
    assert cli.main([*argv, "--credit-limit", str(limit)]) == 0
    made = json.loads(capsys.readouterr().out)
    return made["orgId"], {"VF-ORG-ID": made["apiKey"]}


def test_a_postpaid_org_spends_into_its_credit_limit_and_shows_its_cycle(stores, lambda_context, capsys):
    org_id, headers = _postpaid(500, capsys)
    _use(org_id, "ai-1", "ai_agent", 40)
    data = call(handler, api_event("billing/balance.json", headers=headers), lambda_context).data
    assert data["type"] == "POSTPAID" and data["status"] == "ACTIVE" and data["isOverconsumed"] is False
    assert data["remainingCredits"] == -40 and data["creditLimit"] == 500 and data["availableCredits"] == 460
    assert data["billingCycle"] == "weekly" and data["cycleUsageCredits"] == 40
    assert datetime.fromisoformat(data["cycleStartedAt"]).weekday() == 0
    limits = call(handler, api_event("billing/limits_get.json", headers=headers), lambda_context).data
    assert limits["creditLimit"] == 500
    # The same 402 rules as prepaid, against balance + limit: class start needs 100 of the 460 left.
    assert ledger.require_credits(org_id, 100, pricing.CLASS_START_MESSAGE) == -40_000
    with pytest.raises(InsufficientCredits, match="Minimum 100"):
        ledger.require_credits(org_id, 461, pricing.CLASS_START_MESSAGE)


def test_work_paid_up_front_stops_at_the_credit_limit_and_live_usage_past_it_is_overconsumed(
    stores, lambda_context, capsys
):
    org_id, headers = _postpaid(30, capsys)
    paid = ledger.UsageEvent(entry_id="ai-1", org_id=org_id, service="ai_agent", credits=25)
    ledger.record_usage(paid, allow_negative=False)
    with pytest.raises(InsufficientCredits):
        ledger.record_usage(paid.model_copy(update={"entry_id": "ai-2", "credits": 6}), allow_negative=False)
    assert ledger.balance_milli(org_id) == -25_000
    _use(org_id, "live-1", "live", 10, room_id="r1")  # live minutes already happened: recorded
    data = call(handler, api_event("billing/balance.json", headers=headers), lambda_context).data
    assert data["status"] == "OVERCONSUMED" and data["isOverconsumed"] is True
    assert data["availableCredits"] == -5 and "past the credit limit of 30.00" in data["message"]
    with pytest.raises(InsufficientCredits):
        ledger.require_credits(org_id, 1)


def test_a_prepaid_org_has_no_credit_limit_and_integrators_cannot_set_one(org, lambda_context, capsys):
    from verriflo_tools import cli

    with pytest.raises(SystemExit, match="postpaid"):
        cli.main(["credits", "limits", org.id, "--credit-limit", "100"])
    with pytest.raises(SystemExit, match="postpaid"):
        cli.main(["org", "create", "Prepaid", "--credit-limit", "100"])
    put = call(
        handler,
        api_event("billing/limits_put.json", headers=org.headers, body={"creditLimit": 1000}),
        lambda_context,
    )
    assert put.status == 400 and ledger.state(org.id).credit_limit_milli == 0
    data = call(handler, api_event("billing/balance.json", headers=org.headers), lambda_context).data
    assert data["creditLimit"] is None and data["availableCredits"] is None
    with pytest.raises(InsufficientCredits):
        ledger.require_credits(org.id, 1)


def test_operators_change_or_clear_a_credit_limit(stores, lambda_context, capsys):
    from verriflo_tools import cli

    org_id, _ = _postpaid(100, capsys)
    assert cli.main(["--json", "credits", "limits", org_id, "--credit-limit", "250"]) == 0
    assert json.loads(capsys.readouterr().out)["creditLimitMilli"] == 250_000
    assert cli.main(["--json", "credits", "limits", org_id, "--low", "20"]) == 0  # limit kept
    assert json.loads(capsys.readouterr().out)["creditLimitMilli"] == 250_000
    assert cli.main(["--json", "credits", "limits", org_id, "--credit-limit", "-1"]) == 0
    assert json.loads(capsys.readouterr().out)["creditLimitMilli"] == 0


def test_the_balance_read_removes_expired_grants_first(org, lambda_context, monkeypatch):
    _grant(org.id, "promo", 50, expires_at=orgs.now() + timedelta(seconds=30))
    later = orgs.now() + timedelta(minutes=5)
    monkeypatch.setattr(ledger, "now", lambda: later)
    data = call(handler, api_event("billing/balance.json", headers=org.headers), lambda_context).data
    assert data["remainingCredits"] == 0


def test_usage_is_reported_by_service_room_and_day(org, lambda_context):
    _grant(org.id, "g", 1000)
    day1 = datetime(2026, 11, 2, 10, tzinfo=UTC)
    _use(
        org.id, "l1", "live", 30, room_id="math-101", quantity=30, unit="participant-minute", occurred_at=day1
    )
    _use(
        org.id,
        "l2",
        "live",
        12,
        room_id="bio-7",
        quantity=12,
        unit="participant-minute",
        occurred_at=day1 + timedelta(days=1),
    )
    _use(org.id, "a1", "ai_tutor", 0.5, room_id="math-101", quantity=1000, unit="token", occurred_at=day1)
    period = {"from": "2026-11-01T00:00:00Z", "to": "2026-11-10T00:00:00Z"}

    def report(group: str) -> dict:
        event = api_event("billing/usage.json", headers=org.headers, query=period | {"groupBy": group})
        return call(handler, event, lambda_context).data

    by_service = report("service")
    assert by_service["totalCredits"] == 42.5 and by_service["from"].startswith("2026-11-01")
    assert [(r["key"], r["credits"], r["quantity"], r["unit"]) for r in by_service["rows"]] == [
        ("live", 42, 42, "participant-minute"),
        ("ai_tutor", 0.5, 1000, "token"),
    ]
    assert [(r["key"], r["credits"]) for r in report("room")["rows"]] == [("math-101", 30.5), ("bio-7", 12)]
    assert [(r["key"], r["credits"]) for r in report("day")["rows"]] == [
        ("2026-11-02", 30.5),
        ("2026-11-03", 12),
    ]


def test_each_day_is_split_per_service_for_the_consoles_chart(org, other_org, lambda_context):
    _grant(org.id, "g", 1000)
    day1 = datetime(2026, 11, 2, 23, 59, tzinfo=UTC)
    minute = {"quantity": 1, "unit": "participant-minute"}
    _use(org.id, "l1", "live", 30, occurred_at=day1, **minute)
    _use(org.id, "l2", "live", 10, occurred_at=day1 - timedelta(hours=5), **minute)
    _use(org.id, "a1", "ai_agent", 2.5, quantity=5000, unit="token", occurred_at=day1)
    _use(org.id, "t1", "transcode", 4, quantity=2, unit="minute", occurred_at=day1 + timedelta(minutes=2))
    _grant(other_org.id, "g", 1000)
    _use(other_org.id, "x1", "live", 99, occurred_at=day1, **minute)
    query = {"from": "2026-11-01T00:00:00Z", "to": "2026-11-10T00:00:00Z", "groupBy": "day", "by": "service"}
    event = api_event("billing/usage.json", headers=org.headers, query=query)
    data = call(handler, event, lambda_context).data
    assert (data["groupBy"], data["by"], data["totalCredits"]) == ("day", "service", 46.5)
    assert [(r["key"], r["credits"]) for r in data["rows"]] == [("2026-11-02", 42.5), ("2026-11-03", 4)]
    day = data["rows"][0]["services"]
    assert [(s["service"], s["credits"], s["quantity"], s["unit"], s["entries"]) for s in day] == [
        ("live", 40, 2, "participant-minute", 2),
        ("ai_agent", 2.5, 5000, "token", 1),
    ]
    assert data["rows"][1]["services"] == [
        {"service": "transcode", "credits": 4, "quantity": 2, "unit": "minute", "entries": 1}
    ]
    plain = call(
        handler,
        api_event("billing/usage.json", headers=org.headers, query=query | {"by": ""}),
        lambda_context,
    )
    assert plain.status == 400  # an empty `by` is not a split


@pytest.mark.parametrize(
    "query",
    [
        {"groupBy": "service", "by": "service"},
        {"groupBy": "day", "by": "room"},
        {"from": "2026-11-10T00:00:00Z", "to": "2026-11-01T00:00:00Z"},
        {"from": "2024-01-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
        {"from": "yesterday"},
        {"groupBy": "week"},
    ],
)
def test_a_bad_usage_period_or_grouping_is_400(org, lambda_context, query):
    reply = call(handler, api_event("billing/usage.json", headers=org.headers, query=query), lambda_context)
    assert (
        reply.status == 400 and reply.body["error"] == "VALIDATION_ERROR" and reply.body["success"] is False
    )


def test_the_ledger_pages_newest_first_with_a_cursor(org, lambda_context):
    _grant(org.id, "g", 100, expires_at=orgs.now() + timedelta(days=30))
    for i in range(5):
        _use(org.id, f"u-{i}", "ai_agent", 1)
    first = call(
        handler, api_event("billing/ledger.json", headers=org.headers, query={"limit": "4"}), lambda_context
    ).data
    assert [i["id"] for i in first["items"]] == ["u-4", "u-3", "u-2", "u-1"]
    assert first["items"][0]["credits"] == -1 and first["items"][0]["balanceAfter"] == 95
    second = call(
        handler,
        api_event(
            "billing/ledger.json", headers=org.headers, query={"limit": "4", "cursor": first["nextCursor"]}
        ),
        lambda_context,
    ).data
    assert [i["id"] for i in second["items"]] == ["u-0", "g"] and second["nextCursor"] is None
    assert second["items"][1]["credits"] == 100 and second["items"][1]["expiresAt"]
    grants = call(
        handler,
        api_event("billing/ledger.json", headers=org.headers, query={"kind": "grant"}),
        lambda_context,
    ).data
    assert [i["id"] for i in grants["items"]] == ["g"]


@pytest.mark.parametrize(
    "query", [{"cursor": "not-a-cursor"}, {"limit": "0"}, {"limit": "201"}, {"kind": "refund"}]
)
def test_bad_ledger_paging_is_400(org, lambda_context, query):
    reply = call(handler, api_event("billing/ledger.json", headers=org.headers, query=query), lambda_context)
    assert reply.status == 400 and reply.body["error"] == "VALIDATION_ERROR"


def test_limits_are_set_partially_and_enforced(org, lambda_context):
    _grant(org.id, "g", 1000)
    put = call(
        handler,
        api_event(
            "billing/limits_put.json", headers=org.headers, body={"roomCredits": 20, "lowCredits": 200}
        ),
        lambda_context,
    )
    assert put.status == 200 and put.data == {
        "orgMonthlyCredits": None,
        "roomCredits": 20,
        "studentMonthlyCredits": None,
        "lowCredits": 200,
        "creditLimit": 0,
    }
    again = call(
        handler,
        api_event("billing/limits_put.json", headers=org.headers, body={"studentMonthlyCredits": 3}),
        lambda_context,
    ).data
    assert again["roomCredits"] == 20 and again["studentMonthlyCredits"] == 3
    cleared = call(
        handler,
        api_event("billing/limits_put.json", headers=org.headers, body={"roomCredits": None}),
        lambda_context,
    ).data
    assert cleared["roomCredits"] is None
    got = call(handler, api_event("billing/limits_get.json", headers=org.headers), lambda_context).data
    assert got == cleared
    with pytest.raises(Exception, match="student"):
        ledger.require_credits(org.id, 5, student_id="s1")


@pytest.mark.parametrize("body", [{"roomCredits": -1}, {"roomCredits": "lots"}, {"unknown": 1}])
def test_bad_limits_are_400_and_change_nothing(org, lambda_context, body):
    reply = call(
        handler, api_event("billing/limits_put.json", headers=org.headers, body=body), lambda_context
    )
    assert reply.status == 400 and reply.body["error"] == "VALIDATION_ERROR"
    assert ledger.state(org.id).caps == ledger.Caps()


def test_another_orgs_usage_and_ledger_are_never_shown(org, other_org, lambda_context):
    _grant(other_org.id, "their-grant", 500)
    _use(other_org.id, "their-use", "live", 7, room_id="secret-room")
    call(
        handler,
        api_event("billing/limits_put.json", headers=other_org.headers, body={"roomCredits": 1}),
        lambda_context,
    )
    mine = {
        name: call(handler, api_event(f"billing/{name}.json", headers=org.headers), lambda_context).data
        for name in ("balance", "usage", "ledger", "limits_get")
    }
    assert mine["balance"]["remainingCredits"] == 0
    assert mine["usage"]["rows"] == [] and mine["ledger"]["items"] == []
    assert mine["limits_get"]["roomCredits"] is None
    # A cursor taken from another org's page still only walks this org's entries.
    theirs = call(
        handler,
        api_event("billing/ledger.json", headers=other_org.headers, query={"limit": "1"}),
        lambda_context,
    ).data
    paged = call(
        handler,
        api_event("billing/ledger.json", headers=org.headers, query={"cursor": theirs["nextCursor"]}),
        lambda_context,
    ).data
    assert paged["items"] == []


def test_a_viewer_cannot_change_limits_and_no_key_is_401(org, lambda_context):
    from verriflo import auth

    viewer = make_org("Viewer School")
    orgs.create_user(
        viewer.id, "viewer@example.com", auth.hash_password("a long viewer password"), role="viewer"
    )
    token, _, _ = auth.login("viewer@example.com", "a long viewer password")
    reply = call(
        handler,
        api_event(
            "billing/limits_put.json", headers={"Authorization": f"Bearer {token}"}, body={"roomCredits": 5}
        ),
        lambda_context,
    )
    assert reply.status == 403
    assert call(handler, api_event("billing/balance.json", headers={}), lambda_context).status == 401


def test_the_scheduled_sweep_expires_due_grants_of_every_org(org, other_org, lambda_context, monkeypatch):
    from billing import sweep
    from support import load_event

    _grant(org.id, "p1", 10, expires_at=orgs.now() + timedelta(seconds=30))
    _grant(other_org.id, "p2", 20, expires_at=orgs.now() + timedelta(seconds=30))
    later = orgs.now() + timedelta(minutes=5)
    monkeypatch.setattr(ledger, "now", lambda: later)
    assert sweep.handler(load_event("billing/sweep.json"), lambda_context) == {
        "grants": 2,
        "removedMilli": 30_000,
        "storageCharges": 0,
    }
    assert sweep.handler(load_event("billing/sweep.json"), lambda_context)["grants"] == 0
