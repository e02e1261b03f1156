"""The ledger's caps, threshold events, replays and grant expiry against the real MongoDB-wire server."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import boto3
import pytest
from verriflo import db, events, ledger
from verriflo.errors import InsufficientCredits, ServiceUnavailable
from verriflo.orgs import now


def _grant(org_id: str, entry_id: str, credits: float, **kw) -> ledger.LedgerEntry:
    return ledger.grant(
        ledger.UsageEvent(entry_id=entry_id, org_id=org_id, service="grant", credits=credits, **kw)
    )


def _use(org_id: str, entry_id: str, credits: float = 1, **kw) -> ledger.UsageEvent:
    return ledger.UsageEvent(entry_id=entry_id, org_id=org_id, service="ai_tutor", credits=credits, **kw)


@pytest.fixture
def bus_sink():
    """A queue behind a rule on the test bus: what the ledger published."""
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName="credits-sink")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bridge = boto3.client("events")
    bridge.put_rule(
        Name="credits",
        EventBusName="verriflo-test-events",
        EventPattern=json.dumps({"detail-type": [{"prefix": "credits."}]}),
    )
    bridge.put_targets(Rule="credits", EventBusName="verriflo-test-events", Targets=[{"Id": "q", "Arn": arn}])

    def drain() -> list[dict]:
        got = []
        while batch := sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", []):
            got += [json.loads(m["Body"])["detail"] for m in batch]
            sqs.delete_message_batch(
                QueueUrl=queue,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
            )
        return got

    return drain


def _sum_of_entries(org_id: str) -> int:
    total = 0
    for e in db.collection(ledger.LEDGER).find({"orgId": org_id}):
        total += e["amountMilli"] if e["kind"] == "grant" else -e["amountMilli"]
    return total


def test_fifty_workers_racing_grants_debits_and_replays_leave_an_exact_balance(org):
    def work(i: int) -> None:
        if i % 4 == 0:
            _grant(org.id, f"g-{i}", 3)
        ledger.record_usage(_use(org.id, f"u-{i}", 1.5))
        ledger.record_usage(_use(org.id, f"u-{i}", 1.5))  # the producer retried

    with ThreadPoolExecutor(max_workers=50) as pool:
        list(pool.map(work, range(200)))
    assert db.collection(ledger.LEDGER).count_documents({"orgId": org.id}) == 200 + 50
    assert ledger.balance_milli(org.id) == _sum_of_entries(org.id) == 50 * 3000 - 200 * 1500


def test_fifty_workers_paying_up_front_never_spend_more_than_the_balance(org):
    _grant(org.id, "g", 40)

    def spend(i: int) -> bool:
        try:
            ledger.record_usage(_use(org.id, f"ai-{i}", 1), allow_negative=False)
            return True
        except InsufficientCredits:
            return False

    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(spend, range(120)))
    assert sum(results) == 40
    assert ledger.balance_milli(org.id) == 0 == _sum_of_entries(org.id)


def test_crossing_low_and_exhausted_under_concurrency_announces_each_once(org, bus_sink):
    _grant(org.id, "g", 150)
    with ThreadPoolExecutor(max_workers=50) as pool:
        list(pool.map(lambda i: ledger.record_usage(_use(org.id, f"u-{i}", 1)), range(160)))
    published = bus_sink()
    assert sorted(e["type"] for e in published) == ["credits.exhausted", "credits.low"]
    low = next(e for e in published if e["type"] == "credits.low")
    assert low["orgId"] == org.id and low["data"]["threshold"] == 100
    assert ledger.balance_milli(org.id) == -10_000
    # A top-up re-arms both; falling again announces again, once each.
    _grant(org.id, "g2", 200)
    assert ledger.state(org.id).low_announced is False
    with ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(lambda i: ledger.record_usage(_use(org.id, f"v-{i}", 1)), range(100)))
    assert [e["type"] for e in bus_sink()] == ["credits.low"]


def test_an_announcement_that_cannot_be_published_is_sent_later_with_the_same_id(org, bus_sink, monkeypatch):
    _grant(org.id, "g", 101)
    real = events.publish
    monkeypatch.setattr(events, "publish", lambda *a, **k: (_ for _ in ()).throw(ServiceUnavailable()))
    ledger.record_usage(_use(org.id, "u-1", 2))  # the bus is down: the debit still counts
    assert ledger.balance_milli(org.id) == 99_000
    assert bus_sink() == []
    monkeypatch.setattr(events, "publish", real)
    ledger.record_usage(_use(org.id, "u-2", 1))
    published = bus_sink()
    assert [e["type"] for e in published] == ["credits.low"]
    assert db.collection(ledger.BALANCES).find_one({"_id": org.id})["outbox"] == []


def test_a_replay_older_than_the_recent_window_is_still_counted_once(org, monkeypatch):
    monkeypatch.setenv("LEDGER_RECENT_WINDOW", "16")
    ledger.ledger_settings.cache_clear()
    _grant(org.id, "g", 100)
    for i in range(30):
        ledger.record_usage(_use(org.id, f"u-{i}", 1))
    again = ledger.record_usage(_use(org.id, "u-0", 1))
    assert again.duplicate is True
    assert ledger.balance_milli(org.id) == 70_000 == _sum_of_entries(org.id)


def test_a_writer_that_died_between_its_two_writes_is_healed_by_the_retry(org):
    _grant(org.id, "g", 10)
    # What a crash right after step 1 leaves: the balance moved, the id remembered, no ledger row.
    db.collection(ledger.BALANCES).update_one(
        {"_id": org.id}, {"$inc": {"creditsMilli": -4000}, "$push": {"recent": "u-crash"}}
    )
    retry = ledger.record_usage(_use(org.id, "u-crash", 4))
    assert retry.duplicate is True
    assert ledger.balance_milli(org.id) == 6000 == _sum_of_entries(org.id)


def test_caps_refuse_work_paid_up_front_but_live_usage_is_still_recorded(org):
    _grant(org.id, "g", 1000)
    caps = ledger.Caps(orgMonthlyMilli=50_000, roomMilli=20_000, studentMonthlyMilli=5_000)
    ledger.configure(org.id, caps=caps)
    ledger.record_usage(_use(org.id, "s-1", 4, room_id="r1", student_id="stu-1"), allow_negative=False)
    with pytest.raises(InsufficientCredits, match="student"):
        ledger.record_usage(_use(org.id, "s-2", 2, room_id="r1", student_id="stu-1"), allow_negative=False)
    with pytest.raises(InsufficientCredits, match="student"):
        ledger.require_credits(org.id, 2, student_id="stu-1")
    ledger.record_usage(_use(org.id, "s-3", 15, room_id="r1"), allow_negative=False)
    with pytest.raises(InsufficientCredits, match="room"):
        ledger.require_credits(org.id, 2, room_id="r1")
    ledger.require_credits(org.id, 2, room_id="r2")
    ledger.record_usage(
        ledger.UsageEvent(entry_id="live-1", org_id=org.id, service="live", credits=40, room_id="r1")
    )  # already happened: recorded regardless
    with pytest.raises(InsufficientCredits, match="monthly cap"):
        ledger.require_credits(org.id, 1)
    assert ledger.balance_milli(org.id) == 1000_000 - 59_000


def test_an_expired_grant_loses_only_what_was_not_spent_and_expiry_runs_once(org):
    _grant(org.id, "base", 10)
    _grant(org.id, "promo", 100, expires_at=now() + timedelta(hours=1))
    ledger.record_usage(_use(org.id, "u-1", 30))
    later = now() + timedelta(hours=2)
    removed = ledger.expire_grants(org.id, at=later)
    assert [e.amount_milli for e in removed] == [70_000]
    assert ledger.expire_grants(org.id, at=later) == []
    assert ledger.balance_milli(org.id) == 10_000 == _sum_of_entries(org.id)


def test_a_grant_in_the_past_is_refused(org):
    with pytest.raises(Exception, match="future"):
        _grant(org.id, "old", 5, expires_at=now() - timedelta(seconds=1))


def test_concurrent_expiry_sweeps_remove_a_grant_once(org):
    _grant(org.id, "promo", 50, expires_at=now() + timedelta(minutes=1))
    later = now() + timedelta(minutes=5)
    barrier = threading.Barrier(8)

    def sweep(_: int) -> None:
        barrier.wait()
        ledger.expire_grants(org.id, at=later)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(sweep, range(8)))
    assert ledger.balance_milli(org.id) == 0 == _sum_of_entries(org.id)


def test_operators_set_limits_check_drift_and_expire_grants_from_the_cli(org, capsys):
    from verriflo_tools import cli

    def run(*argv: str) -> dict:
        assert cli.main(["--json", *argv]) == 0
        return json.loads(capsys.readouterr().out)

    limits = run("credits", "limits", org.id, "--room", "25", "--student-monthly", "5", "--low", "50")
    assert limits["caps"]["roomMilli"] == 25_000 and limits["lowMarkMilli"] == 50_000
    cleared = run("credits", "limits", org.id, "--room", "-1")
    assert cleared["caps"] == {"orgMonthlyMilli": None, "roomMilli": None, "studentMonthlyMilli": 5_000}
    run("credits", "add", org.id, "20", "--grant-id", "promo", "--expires-days", "1")
    assert run("credits", "check", org.id)["driftMilli"] == 0
    assert run("credits", "expire", org.id)["expired"] == []  # not due yet
