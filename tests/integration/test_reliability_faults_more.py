"""The fault-injection matrix, continued (same rules and table as test_reliability_faults.py): the
webhook dispatcher (EventBridge -> SQS -> dispatcher, and its sweep), the ClassSummary state
machine's steps, LiveKit's egress webhooks, and the sweeps themselves as consumers. Each external
call fails once at each step, or the invocation dies right after it; then the world's own retries
run (SQS redelivery, Step Functions' Retry, LiveKit's redelivery, the next scheduled sweep).
Counted after: events, deliveries, charges and records. Nothing lost, nothing twice."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from ai_tutor import store as tutor_store
from fault_support import Faults, Killed, age_outbox, events_of, mongo_error, record, write_matrix
from livekit_support import EventTap
from rooms import sweep as rooms_sweep
from tutor_support import ROOM_ID, add_notes, ask_stream, end_class, open_class, question, run_definition
from verriflo import db, events, outbox, webhook_store, webhooks
from verriflo.errors import ServiceUnavailable
from verriflo.orgs import now
from webhook_dispatcher import logic as dispatcher_logic
from webhook_dispatcher import sender
from webhook_dispatcher import sweep as dispatcher_sweep
from webhook_support import bridge_event, queued

pytest_plugins = ("livekit_support", "tutor_support", "webhook_fixtures")

Steps = dict[str, tuple[Any, str, Callable[[], BaseException], bool]]


@pytest.fixture(scope="module", autouse=True)
def matrix_report() -> Iterator[None]:
    yield
    write_matrix()


# --- EventBridge -> SQS -> webhook dispatcher, and the dispatcher's sweep ---------------------------


def queue_error() -> BaseException:
    return ServiceUnavailable("The webhook queue is unavailable; retry shortly.")


def dispatcher_steps() -> Steps:
    return {
        "mongo.endpoints_for": (webhook_store, "endpoints_for", mongo_error, False),
        "mongo.ensure_delivery": (webhook_store, "ensure_delivery", mongo_error, False),
        "mongo.claim": (webhook_store, "claim", mongo_error, False),
        "mongo.get_endpoint": (webhook_store, "get_endpoint", mongo_error, False),
        "mongo.record_attempt": (webhook_store, "record_attempt", mongo_error, False),
        "lambda.killed_after_claim": (webhook_store, "claim", Killed, True),
        "lambda.killed_after_post": (sender, "send", Killed, True),
        "lambda.killed_after_record": (webhook_store, "record_attempt", Killed, True),
    }


class Dispatcher:
    """The dispatcher as AWS runs it: SQS batches, redelivery of failed records, the minute sweep."""

    def __init__(self, lambda_context: Any, queue: str) -> None:
        self.ctx, self.queue = lambda_context, queue

    def consume(self, body: dict[str, Any]) -> str:
        """One SQS delivery of `body` to its record handler (the batch processor reports a record
        that raised, and SQS delivers it again): 'ok', 'failed' or 'killed'."""
        try:
            dispatcher_logic.handle_message(copy.deepcopy(body))
        except Killed:
            return "killed"
        except ServiceUnavailable:
            return "failed"
        return "ok"

    def minutes_later(self) -> None:
        """Leases and retry delays run out (as several minutes later)."""
        coll = db.collection(webhook_store.DELIVERIES)
        for doc in coll.find({"status": "pending"}):
            earlier = {"nextAttemptAt": (doc.get("nextAttemptAt") or now()) - timedelta(minutes=10)}
            if doc.get("lockedUntil"):
                earlier["lockedUntil"] = doc["lockedUntil"] - timedelta(minutes=10)
            coll.update_one({"_id": doc["_id"]}, {"$set": earlier})

    def sweep(self) -> None:
        """The scheduled sweep, then every wake-up it queued consumed (failed ones redelivered once)."""
        try:
            dispatcher_sweep.handler({}, self.ctx)
        except ServiceUnavailable:
            return  # the next minute's sweep comes
        for body in queued(self.queue):
            if self.consume(body) != "ok":
                self.consume(body)

    def settle(self, rounds: int = 3) -> None:
        for _ in range(rounds):
            if not db.collection(webhook_store.DELIVERIES).count_documents({"status": "pending"}):
                return
            self.minutes_later()
            self.sweep()


def attempt_update_once(faults: Faults, monkeypatch: pytest.MonkeyPatch) -> None:
    """The delivery's update after its attempt was logged fails once (MongoDB drops the connection
    between the two writes of `record_attempt`)."""
    from pymongo.collection import Collection

    real = Collection.update_one

    def faulty(self: Collection, filter: dict[str, Any], update: Any, *args: Any, **kwargs: Any) -> Any:
        if not faults.fired and self.name == webhook_store.DELIVERIES and "attempts" in filter:
            if "lastAttemptAt" in (update.get("$set") or {}):
                faults.fired += 1
                raise mongo_error()
        return real(self, filter, update, *args, **kwargs)

    monkeypatch.setattr(Collection, "update_one", faulty)


def delivery_counts(org_id: str, endpoint_id: str, receivers: Any, event_id: str) -> dict[str, Any]:
    delivery_id = webhooks.delivery_id(endpoint_id, event_id)
    got = [r for r in receivers.to("ok") if r.headers.get("webhook-id") == delivery_id]
    doc = db.collection(webhook_store.DELIVERIES).find_one({"_id": delivery_id}) or {}
    attempts = [a.n for a in webhook_store.attempts_of(org_id, delivery_id)]
    return {
        # distinct webhook-ids received (the POSTs of them): a receiver dedupes by webhook-id
        "webhook received": (len({r.headers["webhook-id"] for r in got}), len(got)),
        "delivery record": db.collection(webhook_store.DELIVERIES).count_documents(
            {"endpointId": endpoint_id}
        ),
        "delivery succeeded": int(doc.get("status") == "succeeded"),
        "attempt log (each n once)": int(attempts == list(range(1, int(doc.get("attempts", 0)) + 1))),
    }


@pytest.mark.parametrize(
    "step",
    [
        *dispatcher_steps(),
        "receiver.http_500",
        "mongo.record_attempt_update",
        "sqs.wake_retry",
    ],
)
def test_the_dispatcher_delivers_an_event_once_whatever_fails_once(
    org, lambda_context, webhook_env, receivers, monkeypatch, step
):
    endpoint, _ = webhook_store.create_endpoint(org.id, receivers.url("ok"), "", [])
    event = events.build("room.finished", org.id, {"roomId": "math-101"})
    world = Dispatcher(lambda_context, webhook_env["queue"])
    faults = Faults(monkeypatch)
    if step == "receiver.http_500":
        real_send = sender.send

        def flaky(url: str, headers: dict[str, str], body: str) -> sender.Outcome:
            if faults.fired:
                return real_send(url, headers, body)
            faults.fired += 1
            return sender.Outcome(500, None, "injected", 1)

        monkeypatch.setattr(sender, "send", flaky)
    elif step == "mongo.record_attempt_update":
        attempt_update_once(faults, monkeypatch)
    elif step == "sqs.wake_retry":
        # the receiver fails once, and the retry's wake-up cannot be queued either
        monkeypatch.setattr(sender, "send", _fail_first(sender.send))
        faults.once(webhook_store, "wake", queue_error)
    else:
        faults.inject(step, dispatcher_steps(), "")
    message = bridge_event(event)
    first = world.consume(message)
    if first != "ok":
        world.consume(message)  # SQS makes the message visible again
    world.settle()
    world.consume(bridge_event(event))  # EventBridge delivered the event twice
    counts = delivery_counts(org.id, endpoint.id, receivers, event["id"])
    record(faults, "EventBridge -> SQS -> dispatcher", step, "SQS redelivery, sweep", first, counts)


def _fail_first(real: Callable[..., sender.Outcome]) -> Callable[..., sender.Outcome]:
    calls = {"n": 0}

    def send(url: str, headers: dict[str, str], body: str) -> sender.Outcome:
        calls["n"] += 1
        if calls["n"] == 1:
            return sender.Outcome(503, None, "busy", 1)
        return real(url, headers, body)

    return send


def sweep_steps() -> Steps:
    return {
        "mongo.due_within": (webhook_store, "due_within", mongo_error, False),
        "mongo.overdue": (webhook_store, "overdue", mongo_error, False),
        "sqs.send_message_batch": (webhook_store, "wake", queue_error, False),
        "lambda.killed_after_wake": (webhook_store, "wake", Killed, True),
    }


@pytest.mark.parametrize("step", list(sweep_steps()))
def test_the_dispatcher_sweep_wakes_a_lost_retry_once_whatever_fails_once(
    org, lambda_context, webhook_env, receivers, monkeypatch, step
):
    endpoint, _ = webhook_store.create_endpoint(org.id, receivers.url("ok"), "", [])
    event = events.build("video.ready", org.id, {"videoId": "v-1"})
    world = Dispatcher(lambda_context, webhook_env["queue"])
    monkeypatch.setattr(sender, "send", _fail_first(sender.send))
    assert world.consume(bridge_event(event)) == "ok"
    queued(webhook_env["queue"])  # the retry's wake-up is lost
    faults = Faults(monkeypatch)
    faults.inject(step, sweep_steps(), "")
    world.minutes_later()
    try:
        world.sweep()
        first = "error"
    except Killed:
        first = "killed"
    world.settle()
    counts = delivery_counts(org.id, endpoint.id, receivers, event["id"])
    record(faults, "dispatcher sweep", step, "next sweep", first, counts)


# --- room.finished -> the ClassSummary state machine (gather -> summarize -> publish) ---------------


def summary_steps() -> Steps:
    return {
        "mongo.claim_summary": (tutor_store, "claim_summary", mongo_error, False),
        "mongo.read_exchanges": (tutor_store, "iter_completed", mongo_error, False),
        "mongo.complete_summary": (tutor_store, "complete_summary", mongo_error, False),
        "lambda.killed_after_complete": (tutor_store, "complete_summary", Killed, True),
        "mongo.mark_published": (tutor_store, "mark_published", mongo_error, False),
        "lambda.killed_after_publish": (events, "publish_many", Killed, True),
    }


def summary_counts(org_id: str, tap: EventTap, seen: list[dict[str, Any]]) -> dict[str, Any]:
    key = {"orgId": org_id, "roomId": ROOM_ID}
    doc = db.collection(tutor_store.SUMMARIES).find_one(key) or {}
    return events_of(tap, seen, "summary.ready") | {
        "summary ready": db.collection(tutor_store.SUMMARIES).count_documents(key | {"status": "ready"}),
        "nothing pending": int(not doc.get(outbox.FIELD)),
    }


@pytest.mark.parametrize("step", [*summary_steps(), "eventbridge.put_events"])
def test_the_class_summary_is_written_and_announced_once_whatever_fails_once(
    org, livekit, lambda_context, event_tap: EventTap, monkeypatch, step
):
    room = open_class(org, livekit, lambda_context)
    add_notes(room, lambda_context)
    ask_stream(room, lambda_context, question(room))
    end_class(room, lambda_context)
    (finished,) = [e for e in event_tap.drain() if e["type"] == "room.finished"]
    rule_input = {"version": "0", "id": "e-1", "detail-type": "room.finished", "detail": finished}
    faults = Faults(monkeypatch)
    faults.inject(step, summary_steps(), "summary.ready")
    # Step Functions' Retry runs the failed step again (a killed Lambda is States.Timeout)
    status, output = run_definition(copy.deepcopy(rule_input), "exec-1", timeouts=(Killed,))
    assert status == "SUCCEEDED", output
    seen: list[dict[str, Any]] = []
    early = summary_counts(org.id, event_tap, seen)  # the execution alone
    assert (early["summary.ready"][0], early["summary ready"]) == (1, 1), early
    # EventBridge delivers room.finished again: a second execution; then the rooms sweep
    assert run_definition(copy.deepcopy(rule_input), "exec-2")[0] == "SUCCEEDED"
    age_outbox(tutor_store.SUMMARIES, f"{org.id}:{ROOM_ID}")
    rooms_sweep.handler({}, lambda_context)
    counts = summary_counts(org.id, event_tap, seen)
    record(faults, "ClassSummary state machine", step, "Retry, 2nd execution, sweep", "error", counts)


def test_a_summary_whose_announcement_failed_every_retry_is_announced_by_the_rooms_sweep(
    org, livekit, lambda_context, event_tap: EventTap, monkeypatch
):
    room = open_class(org, livekit, lambda_context)
    end_class(room, lambda_context)
    (finished,) = [e for e in event_tap.drain() if e["type"] == "room.finished"]
    rule_input = {"version": "0", "id": "e-1", "detail-type": "room.finished", "detail": finished}
    faults = Faults(monkeypatch)
    real = events.publish_many

    def bus_down(batch: list[dict[str, Any]], **kwargs: Any) -> list[dict[str, Any]]:
        if any(e["type"] == "summary.ready" for e in batch) and faults.fired < 10:
            faults.fired += 1
            raise ServiceUnavailable("The event bus is unavailable; retry shortly.")
        return real(batch, **kwargs)

    monkeypatch.setattr(events, "publish_many", bus_down)
    status, _ = run_definition(copy.deepcopy(rule_input), "exec-1")
    assert status == "FAILED" and faults.fired == 5  # Publish and its 4 retries, then Catch
    record_doc = tutor_store.get_summary(org.id, ROOM_ID) or {}
    assert record_doc["status"] == "ready"  # a late failure never overwrites a stored summary
    faults.fired = 10  # the bus is back
    seen: list[dict[str, Any]] = []
    assert summary_counts(org.id, event_tap, seen)["summary.ready"] == (0, 0)
    rooms_sweep.handler({}, lambda_context)  # too early: the run may still be retrying
    assert summary_counts(org.id, event_tap, seen)["summary.ready"] == (0, 0)
    age_outbox(tutor_store.SUMMARIES, f"{org.id}:{ROOM_ID}")
    assert rooms_sweep.handler({}, lambda_context)["summaryEffects"] == 1
    rooms_sweep.handler({}, lambda_context)
    counts = summary_counts(org.id, event_tap, seen)
    faults.fired = 1
    record(
        faults, "ClassSummary state machine", "eventbridge down for every Retry", "sweep", "failed", counts
    )
