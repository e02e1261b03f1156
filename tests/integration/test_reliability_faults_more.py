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
from fault_support import (
    Faults,
    Killed,
    age_outbox,
    events_of,
    kill_without_release,
    mongo_error,
    record,
    redeliver_until_done,
    write_matrix,
)
from livekit_support import EventTap, deliver, fund, rooms_event
from media_support import MEDIA, RECORDINGS, use_media_env
from rooms import hook_store as rooms_hook_store
from rooms import recording_store as rooms_recording_store
from rooms import records as rooms_records
from rooms import session_store as rooms_session_store
from rooms import store as rooms_store
from rooms import sweep as rooms_sweep
from rooms.handler import handler as rooms_handler
from support import api_event, call
from tutor_support import ROOM_ID, add_notes, ask_stream, end_class, open_class, question, run_definition
from verriflo import db, events, ledger, media, objects, outbox, webhook_store, webhooks
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
    stored = tutor_store.get_summary(org.id, ROOM_ID)
    assert stored is not None and stored.status == "ready"  # a late failure never overwrites a stored summary
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


# --- LiveKit egress webhooks -> recordings ---------------------------------------------------------

EGRESS_ROOM = "bio-1"
TRACKS = [{"type": "AUDIO", "source": "MICROPHONE"}, {"type": "VIDEO", "source": "CAMERA"}]


def egress_steps() -> Steps:
    return {
        "mongo.update_recording": (rooms_recording_store, "update_recording", mongo_error, False),
        "mongo.release_recording_slot": (rooms_store, "release_recording_slot", mongo_error, False),
        "mongo.mark_event_done": (rooms_hook_store, "event_done", mongo_error, False),
        "lambda.killed_after_update": (rooms_recording_store, "update_recording", Killed, True),
    }


@pytest.mark.parametrize(
    "report, step",
    [
        *[("egress_started", s) for s in egress_steps() if s != "mongo.release_recording_slot"],
        ("egress_started", "eventbridge.put_events"),
        *[("egress_ended", s) for s in egress_steps()],
        ("egress_ended", "eventbridge.put_events"),
    ],
)
def test_an_egress_report_updates_its_recording_once_whatever_fails_once(
    org, livekit, lambda_context, event_tap: EventTap, monkeypatch, report, step
):
    fund(org.id)
    body = {"roomId": EGRESS_ROOM, "title": "Biology", "participant": {"uid": "t-1", "name": "Ada"}}
    created = call(
        rooms_handler, api_event("rooms/create.json", headers=org.headers, body=body), lambda_context
    )
    livekit.join(f"{org.id}.{EGRESS_ROOM}", created.data["token"], TRACKS)
    livekit.pump(rooms_handler, lambda_context, "room_started", "participant_joined")
    started = call(
        rooms_handler, rooms_event("recording_start", org.headers, {}, room_id=EGRESS_ROOM), lambda_context
    )
    egress_id = started.data["egressId"]
    (delivery,) = [d for d in livekit.wait_for("egress_started") if d.event == "egress_started"]
    if report == "egress_ended":
        assert deliver(rooms_handler, lambda_context, delivery).status == 200
        stop = rooms_event("recording_stop", org.headers, {}, room_id=EGRESS_ROOM)
        assert call(rooms_handler, stop, lambda_context).status == 200
        (delivery,) = [d for d in livekit.wait_for("egress_ended", timeout=60) if d.event == "egress_ended"]
    if step.startswith("lambda."):
        kill_without_release(monkeypatch)
    event_tap.drain()
    name = {"egress_started": "recording.started", "egress_ended": "recording.ready"}[report]
    faults = Faults(monkeypatch)
    faults.inject(step, egress_steps(), name)
    reply = redeliver_until_done(delivery, lambda_context)
    rec = db.collection(rooms_records.RECORDINGS).find_one({"_id": egress_id}) or {}
    room = rooms_store.find_room(org.id, EGRESS_ROOM)
    want = {"egress_started": "EGRESS_STARTING", "egress_ended": "EGRESS_COMPLETE"}[report]
    counts = events_of(event_tap, [], name) | {
        "recording record": db.collection(rooms_records.RECORDINGS).count_documents({"orgId": org.id}),
        f"recording {want}": int(rec.get("status") == want),
    }
    if report == "egress_ended":
        counts["recording slot released"] = int(room is not None and room.active_egress_id is None)
    record(faults, f"LiveKit {report}", step, "redelivery", reply, counts)


# --- the sweeps as consumers: each fails once at each step, the next scheduled run completes -------


def s3_error() -> BaseException:
    return ServiceUnavailable("Storage is unavailable; retry shortly.")


def ledger_grant_update_once(faults: Faults, monkeypatch: pytest.MonkeyPatch) -> None:
    """Marking an expired grant done fails once, after its expiry entry was written."""
    from pymongo.collection import Collection

    real = Collection.update_one

    def faulty(self: Collection, filter: dict[str, Any], update: Any, *args: Any, **kwargs: Any) -> Any:
        if not faults.fired and self.name == ledger.LEDGER and "expiredAt" in filter:
            faults.fired += 1
            raise mongo_error()
        return real(self, filter, update, *args, **kwargs)

    monkeypatch.setattr(Collection, "update_one", faulty)


def billing_sweep_steps() -> Steps:
    return {
        "mongo.find_due_grants": (ledger.expiry, "spent_milli", mongo_error, False),
        "ledger.expiry_entry": (ledger.expiry, "record", mongo_error, False),
        "lambda.killed_after_expiry_entry": (ledger.expiry, "record", Killed, True),
    }


@pytest.mark.parametrize("step", [*billing_sweep_steps(), "mongo.mark_grant_expired"])
def test_the_billing_sweep_expires_a_grant_once_whatever_fails_once(org, lambda_context, monkeypatch, step):
    from billing import sweep as billing_sweep

    def grant(entry_id: str, credits: int, **extra: Any) -> None:
        ledger.grant(
            ledger.UsageEvent(entry_id=entry_id, org_id=org.id, service="grant", credits=credits, **extra)
        )

    grant("paid", 50)
    grant("promo", 100, expires_at=now() + timedelta(hours=1))
    # the promotion's hour has passed (moved, not waited for), 30 credits of it spent within it
    db.collection(ledger.LEDGER).update_one(
        {"entryId": "promo", "kind": "grant"},
        {"$set": {"occurredAt": now() - timedelta(hours=1), "expiresAt": now() - timedelta(minutes=1)}},
    )
    ledger.record_usage(
        ledger.UsageEvent(
            entry_id="u1",
            org_id=org.id,
            service="live",
            credits=30,
            occurred_at=now() - timedelta(minutes=30),
        )
    )
    faults = Faults(monkeypatch)
    if step == "mongo.mark_grant_expired":
        ledger_grant_update_once(faults, monkeypatch)
    else:
        faults.inject(step, billing_sweep_steps(), "")
    with pytest.raises((ServiceUnavailable, Killed)):
        billing_sweep.handler({}, lambda_context)
    billing_sweep.handler({}, lambda_context)  # the next scheduled run
    billing_sweep.handler({}, lambda_context)
    counts = {
        "expiry entry": db.collection(ledger.LEDGER).count_documents({"orgId": org.id, "kind": "expiry"}),
        "grant marked expired": db.collection(ledger.LEDGER).count_documents(
            {"entryId": "promo", "kind": "grant", "expiredAt": {"$ne": None}}
        ),
        "balance 50 (paid only)": int(ledger.balance_milli(org.id) == 50_000),
    }
    record(faults, "billing sweep (grant expiry)", step, "next sweep", "error", counts)


def run_once(sweep: Callable[[], Any]) -> str:
    """One scheduled run with the fault armed: what it did ('error', 'killed' or its result)."""
    try:
        return f"did {sweep()}"
    except ServiceUnavailable:
        return "error"
    except Killed:
        return "killed"


def expired_recording(org_id: str, title: str) -> media.Video:
    """A recording of an ended class whose retention ran out, with its file and its HLS output."""
    import boto3

    video = media.insert_video(
        org_id,
        title=title,
        size_bytes=4,
        content_type="video/mp4",
        kind="recording",
        room_id="done-1",
        bucket=RECORDINGS,
        expires_at=now() - timedelta(minutes=1),
    )
    s3 = boto3.client("s3")
    s3.put_object(Bucket=RECORDINGS, Key=video.source_key, Body=b"mp4!")
    s3.put_object(Bucket=MEDIA, Key=f"{video.media_prefix}720p/index.m3u8", Body=b"#EXTM3U\n")
    return video


def retention_steps() -> Steps:
    return {
        "mongo.find_expired": (media, "expired_recordings", mongo_error, False),
        "s3.delete_outputs": (objects, "delete_prefix", s3_error, False),
        "s3.delete_source": (objects, "delete", s3_error, False),
        "mongo.delete_record": (media, "delete_video", mongo_error, False),
        "lambda.killed_after_s3_delete": (objects, "delete", Killed, True),
    }


@pytest.mark.parametrize("step", list(retention_steps()))
def test_the_transcode_retention_sweep_deletes_expired_recordings_once_whatever_fails_once(
    org, lambda_context, monkeypatch, step
):
    import boto3
    from transcode import sweep as transcode_sweep

    use_media_env(monkeypatch)
    s3 = boto3.client("s3")
    for n in range(2):
        expired_recording(org.id, f"rec {n}")
    faults = Faults(monkeypatch)
    faults.inject(step, retention_steps(), "")
    first = run_once(lambda: transcode_sweep.handler({}, lambda_context)["deleted"])
    transcode_sweep.handler({}, lambda_context)  # the next scheduled run
    left = sum(s3.list_objects_v2(Bucket=b).get("KeyCount", 0) for b in (RECORDINGS, MEDIA))
    counts = {
        "recordings purged (2 of 2)": int(
            left == 0 and not db.collection(media.VIDEOS).count_documents({"orgId": org.id})
        ),
    }
    record(faults, "transcode retention sweep", step, "next sweep", first, counts)


@pytest.mark.parametrize(
    "step", ["mongo.pending_charges", "ledger.record_usage", "lambda.killed_after_charge"]
)
def test_the_rooms_sweep_charges_a_dead_attempts_session_once_whatever_fails_once(
    org, lambda_context, monkeypatch, step
):
    from rooms import sweep as rooms_sweep_fn

    fund(org.id)
    left_at = now() - timedelta(minutes=5)
    db.collection(rooms_records.SESSIONS).insert_one(
        {
            "_id": "RM_x:PA_s1",
            "orgId": org.id,
            "roomId": "gone-1",
            "lkRoom": f"{org.id}.gone-1",
            "uid": "s-1",
            "role": "STUDENT",
            "joinedAt": left_at - timedelta(minutes=3),
            "leftAt": left_at,
            "seconds": 180,
            "chargePending": True,
        }
    )
    faults = Faults(monkeypatch)
    faults.inject(
        step,
        {
            "mongo.pending_charges": (rooms_session_store, "pending_charges", mongo_error, False),
            "ledger.record_usage": (ledger, "record_usage", mongo_error, False),
            "lambda.killed_after_charge": (ledger, "record_usage", Killed, True),
        },
        "",
    )
    first = run_once(lambda: rooms_sweep_fn.handler({}, lambda_context)["charges"])
    rooms_sweep_fn.handler({}, lambda_context)
    rooms_sweep_fn.handler({}, lambda_context)
    counts = {
        "live charge": db.collection(ledger.LEDGER).count_documents({"orgId": org.id, "service": "live"}),
        "session settled": db.collection(rooms_records.SESSIONS).count_documents(
            {"_id": "RM_x:PA_s1", "chargePending": {"$ne": True}}
        ),
    }
    record(faults, "rooms sweep (session charges)", step, "next sweep", first, counts)


def test_a_recording_that_cannot_be_deleted_holds_up_neither_the_others_nor_the_rest_of_the_sweep(
    org, lambda_context, monkeypatch
):
    from transcode import sweep as transcode_sweep

    use_media_env(monkeypatch)
    stuck, _ = expired_recording(org.id, "stuck"), expired_recording(org.id, "other")
    real = objects.delete

    def refuse(bucket: str, key: str) -> None:
        if key == stuck.source_key:
            raise s3_error()
        real(bucket, key)

    monkeypatch.setattr(objects, "delete", refuse)
    outcome = transcode_sweep.handler({}, lambda_context)
    assert outcome["deleted"] == 1 and {"stalled", "pending", "effects"} <= set(outcome)
    left = {v["_id"] for v in db.collection(media.VIDEOS).find({"orgId": org.id})}
    assert left == {stuck.id}
