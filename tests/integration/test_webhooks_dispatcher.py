"""The dispatcher in-process against real HTTP receivers on loopback, the real MongoDB-wire server,
and moto's SQS: signing, retries, 410, dead-lettering and replay, duplicates, slow endpoints, SSRF."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import boto3
import pytest
from standardwebhooks.webhooks import Webhook
from support import load_event
from verriflo import db, events, webhook_store, webhooks
from verriflo.orgs import now
from webhook_dispatcher import handler as dispatcher
from webhook_dispatcher import logic, sweep
from webhook_support import bridge_event, delayed, queued, sqs_event

pytest_plugins = ["webhook_fixtures"]


def _endpoint(org_id: str, url: str, types: list[str] | None = None) -> tuple[webhook_store.Endpoint, str]:
    return webhook_store.create_endpoint(org_id, url, "", types or [])


def _event(org_id: str, event_type: str = "room.finished", **data) -> dict:
    return events.build(event_type, org_id, data or {"roomId": "math-101"})


def _deliver(lambda_context, *bodies, raw=None) -> dict:
    return dispatcher.handler(sqs_event(*bodies, raw=raw), lambda_context)


def _delivery(endpoint_id: str, event_id: str) -> webhook_store.Delivery:
    found = webhook_store.find_delivery(webhooks.delivery_id(endpoint_id, event_id))
    assert found is not None
    return found


def _make_due(delivery_id: str) -> None:
    db.collection(webhook_store.DELIVERIES).update_one(
        {"_id": delivery_id}, {"$set": {"nextAttemptAt": now() - timedelta(seconds=1)}}
    )


def test_an_event_reaches_each_subscribed_endpoint_signed_per_standard_webhooks(
    org, lambda_context, webhook_env, receivers
):
    ok, secret = _endpoint(org.id, receivers.url("ok"), ["room.finished"])
    _endpoint(org.id, receivers.url("other"), ["video.ready"])  # not subscribed
    event = _event(org.id)
    assert _deliver(lambda_context, bridge_event(event)) == {"batchItemFailures": []}
    [got] = receivers.received
    assert got.path == "/ok"
    assert got.headers["webhook-id"] == webhooks.delivery_id(ok.id, event["id"])
    assert got.headers["webhook-signature"].startswith("v1,")
    assert Webhook(secret).verify(got.body, got.headers)["id"] == event["id"]
    delivery = _delivery(ok.id, event["id"])
    assert delivery.status == "succeeded" and delivery.attempts == 1
    [attempt] = webhook_store.attempts_of(org.id, delivery.id)
    assert attempt.status_code == 200 and attempt.response == '{"received": true}'


def test_an_endpoint_subscribed_to_recording_ready_still_gets_a_recordings_hls_fact(
    org, lambda_context, webhook_env, receivers
):
    """`recording.ready` once also announced a recording's HLS; that fact is now the recording's
    `video.ready`, which an endpoint subscribed to `recording.ready` alone still receives (an
    upload's `video.ready` it never asked for, it does not)."""
    _endpoint(org.id, receivers.url("recordings"), ["recording.ready"])
    _endpoint(org.id, receivers.url("videos"), ["video.ready"])
    mp4 = _event(org.id, "recording.ready", roomId="math-101", egressId="EG_1", videoId="rec_1")
    hls = _event(org.id, "video.ready", videoId="rec_1", kind="recording", roomId="math-101")
    upload = _event(org.id, "video.ready", videoId="vid_1", kind="upload")
    _deliver(lambda_context, bridge_event(mp4), bridge_event(hls), bridge_event(upload))
    got = {p: sorted(json.loads(r.body)["id"] for r in receivers.to(p)) for p in ("recordings", "videos")}
    assert got == {"recordings": sorted([mp4["id"], hls["id"]]), "videos": sorted([hls["id"], upload["id"]])}


def test_the_same_event_published_twice_is_one_delivery_with_one_id(
    org, lambda_context, webhook_env, receivers
):
    ok, _ = _endpoint(org.id, receivers.url("ok"))
    event = _event(org.id)
    _deliver(lambda_context, bridge_event(event), bridge_event(event))
    _deliver(lambda_context, bridge_event(event))
    assert len(receivers.to("ok")) == 1
    assert db.collection(webhook_store.DELIVERIES).count_documents({"endpointId": ok.id}) == 1


@pytest.mark.parametrize(
    "behaviour, error, code",
    [
        ("fail", None, 500),
        ("slow", "timeout", None),
        ("close", "connection closed", None),
    ],
)
def test_a_failing_receiver_is_retried_on_schedule_and_every_attempt_is_logged(
    org, lambda_context, webhook_env, receivers, behaviour, error, code
):
    endpoint, secret = _endpoint(org.id, receivers.url(behaviour))
    event = _event(org.id)
    _deliver(lambda_context, bridge_event(event))
    delivery = _delivery(endpoint.id, event["id"])
    assert delivery.status == "pending" and delivery.attempts == 1
    assert delivery.last_status_code == code and delivery.last_error == error
    assert timedelta(seconds=3) < delivery.next_attempt_at - delivery.last_attempt_at <= timedelta(seconds=5)
    # Its wake-up waits on the queue for the 5 s retry delay.
    assert delayed(webhook_env["queue"]) == 1 and queued(webhook_env["queue"]) == []
    assert db.collection(webhook_store.DELIVERIES).find_one({"_id": delivery.id})["wokenFor"] == 1
    # The wake-up arrives: the second attempt goes out with the same webhook-id, still failing.
    _make_due(delivery.id)
    _deliver(lambda_context, {"deliveryId": delivery.id, "forAttempt": 1})
    again = _delivery(endpoint.id, event["id"])
    assert again.attempts == 2 and again.status == "pending"
    assert again.next_attempt_at - again.last_attempt_at == timedelta(minutes=5)
    sent = receivers.to(behaviour)
    assert len(sent) == 2 and {r.headers["webhook-id"] for r in sent} == {delivery.id}
    assert all(Webhook(secret).verify(r.body, r.headers) for r in sent)
    assert [a.n for a in webhook_store.attempts_of(org.id, delivery.id)] == [1, 2]
    # A duplicate of the old wake-up is stale and changes nothing.
    _deliver(lambda_context, {"deliveryId": delivery.id, "forAttempt": 1})
    assert len(receivers.to(behaviour)) == 2


def test_a_receiver_answering_410_disables_the_endpoint_and_the_event_is_kept(
    org, lambda_context, webhook_env, receivers
):
    gone, _ = _endpoint(org.id, receivers.url("gone"))
    event = _event(org.id)
    _deliver(lambda_context, bridge_event(event))
    endpoint = webhook_store.get_endpoint(org.id, gone.id)
    assert endpoint.enabled is False and "410" in (endpoint.disabled_reason or "")
    delivery = _delivery(gone.id, event["id"])
    assert delivery.status == "failed" and delivery.last_status_code == 410
    assert queued(webhook_env["queue"]) == []
    # Later events are not sent to a disabled endpoint; the kept one is replayed once it is back.
    _deliver(lambda_context, bridge_event(_event(org.id)))
    assert len(receivers.to("gone")) == 1
    webhook_store.update_endpoint(org.id, gone.id, url=receivers.url("ok"), enabled=True)
    webhook_store.reopen(org.id, gone.id, [delivery.id])
    _deliver(lambda_context, {"deliveryId": delivery.id, "forAttempt": 1})
    assert _delivery(gone.id, event["id"]).status == "succeeded"
    assert receivers.to("ok")[0].headers["webhook-id"] == delivery.id


def test_a_delivery_that_runs_out_of_retries_is_dead_lettered_and_replayable(
    org, lambda_context, webhook_env, receivers
):
    endpoint, _ = _endpoint(org.id, receivers.url("fail"))
    event = _event(org.id)
    _deliver(lambda_context, bridge_event(event))
    delivery = _delivery(endpoint.id, event["id"])
    # Fast-forward through the schedule: attempts 2..10, each woken when due.
    for n in range(1, len(webhooks.RETRY_SCHEDULE_S)):
        _make_due(delivery.id)
        _deliver(lambda_context, {"deliveryId": delivery.id, "forAttempt": n})
    dead = _delivery(endpoint.id, event["id"])
    assert dead.status == "failed" and dead.attempts == 10 and dead.finished_at is not None
    assert len(webhook_store.attempts_of(org.id, dead.id)) == 10 == len(receivers.to("fail"))
    total = sum(webhooks.RETRY_SCHEDULE_S)
    assert timedelta(days=2.5) < timedelta(seconds=total) < timedelta(days=3.5)
    webhook_store.update_endpoint(org.id, endpoint.id, url=receivers.url("ok"))
    [reopened] = webhook_store.reopen(org.id, endpoint.id, since=now() - timedelta(hours=1))
    _deliver(lambda_context, {"deliveryId": reopened.id, "forAttempt": reopened.attempts})
    assert _delivery(endpoint.id, event["id"]).status == "succeeded"


def test_one_slow_endpoint_does_not_hold_up_the_others(
    org, lambda_context, webhook_env, receivers, monkeypatch
):
    # No clock thresholds (they flake on a loaded machine): the slow receiver holds its request until
    # every fast delivery has arrived. Delivered side by side, they arrive while it waits and release
    # it; delivered one after another, they would queue behind it until its stall ran out.
    monkeypatch.setenv("WEBHOOK_TIMEOUT_S", "20")
    # The fixture's 1 s connect timeout is for the timeout tests; on a loaded machine a loopback
    # connect can take longer, and a fast delivery would then fail for a reason this test is not about.
    monkeypatch.setenv("WEBHOOK_CONNECT_TIMEOUT_S", "10")
    webhooks.webhook_settings.cache_clear()
    receivers.stall_s = 15.0
    receivers.release = threading.Event()
    _endpoint(org.id, receivers.url("slow"))
    for i in range(4):
        _endpoint(org.id, receivers.url(f"ok{i}"))

    def release_when_all_fast_arrived() -> None:
        deadline = time.monotonic() + receivers.stall_s
        while time.monotonic() < deadline:
            if len([r for r in receivers.received if r.path != "/slow"]) >= 8:
                receivers.release.set()
                return
            time.sleep(0.01)

    watcher = threading.Thread(target=release_when_all_fast_arrived, daemon=True)
    watcher.start()
    _deliver(lambda_context, bridge_event(_event(org.id)), bridge_event(_event(org.id, "video.ready")))
    watcher.join(timeout=1)
    fast = [r for r in receivers.received if r.path != "/slow"]
    assert len(fast) == 8
    assert receivers.released and all(receivers.released), "fast deliveries waited for the slow endpoint"


def test_a_loopback_url_is_refused_at_send_time_without_the_operator_setting(
    org, lambda_context, webhook_env, receivers, monkeypatch
):
    endpoint, _ = _endpoint(org.id, receivers.url("ok"))
    monkeypatch.setenv("WEBHOOK_ALLOW_PRIVATE_TARGETS", "false")
    webhooks.webhook_settings.cache_clear()
    event = _event(org.id)
    _deliver(lambda_context, bridge_event(event))
    assert receivers.received == []
    delivery = _delivery(endpoint.id, event["id"])
    assert delivery.status == "pending" and delivery.last_error.startswith("blocked:")


def test_after_rotation_deliveries_verify_with_the_old_and_the_new_secret(
    org, lambda_context, webhook_env, receivers
):
    endpoint, old = _endpoint(org.id, receivers.url("ok"))
    _, new = webhook_store.rotate_secret(org.id, endpoint.id)
    _deliver(lambda_context, bridge_event(_event(org.id)))
    [got] = receivers.received
    assert len(got.headers["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify(got.body, got.headers) and Webhook(new).verify(got.body, got.headers)


def test_a_bad_record_fails_alone_and_the_rest_of_the_batch_is_delivered(
    org, lambda_context, webhook_env, receivers, monkeypatch
):
    _endpoint(org.id, receivers.url("ok"))
    result = _deliver(lambda_context, bridge_event(_event(org.id)), raw=["{not json"])
    assert result == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    assert len(receivers.to("ok")) == 1
    # A store outage fails the record (SQS redelivers it, then its DLQ keeps it); nothing is marked sent.
    from verriflo.errors import ServiceUnavailable

    def down(*_a, **_k):
        raise ServiceUnavailable()

    monkeypatch.setattr(webhook_store, "endpoints_for", down)
    failed = _deliver(
        lambda_context, bridge_event(_event(org.id)), {"deliveryId": "msg_unknown", "forAttempt": 0}
    )
    assert failed == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    # When every record fails, the whole invocation fails (Powertools), and SQS retries the batch.
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    with pytest.raises(BatchProcessingError):
        _deliver(lambda_context, bridge_event(_event(org.id)))


def test_the_sweep_wakes_long_waits_when_they_come_due_and_recovers_lost_wake_ups(
    org, lambda_context, webhook_env, receivers
):
    endpoint, _ = _endpoint(org.id, receivers.url("fail"))
    event = _event(org.id)
    _deliver(lambda_context, bridge_event(event))
    delivery = _delivery(endpoint.id, event["id"])
    boto3.client("sqs").purge_queue(QueueUrl=webhook_env["queue"])  # the 5 s wake-up of attempt 1
    # A retry two hours out (as after the 4th attempt): no wake-up was sent, none is due yet.
    db.collection(webhook_store.DELIVERIES).update_one(
        {"_id": delivery.id},
        {"$set": {"nextAttemptAt": now() + timedelta(hours=2)}, "$unset": {"wokenFor": ""}},
    )
    assert sweep.handler(load_event("webhook_dispatcher/sweep.json"), lambda_context) == {"woken": 0}
    # Ten minutes before it is due, the sweep queues its wake-up (SQS delays it the rest of the way).
    db.collection(webhook_store.DELIVERIES).update_one(
        {"_id": delivery.id}, {"$set": {"nextAttemptAt": now() + timedelta(minutes=10)}}
    )
    assert sweep.handler(load_event("webhook_dispatcher/sweep.json"), lambda_context) == {"woken": 1}
    assert delayed(webhook_env["queue"]) == 1
    assert logic.sweep() == 0  # already woken
    # The wake-up was lost (say, deleted by hand): once overdue, the sweep wakes it again.
    _make_due(delivery.id)
    db.collection(webhook_store.DELIVERIES).update_one(
        {"_id": delivery.id}, {"$set": {"nextAttemptAt": now() - timedelta(minutes=3)}}
    )
    assert logic.sweep() == 1


def test_a_delivery_whose_endpoint_was_deleted_is_dropped_quietly(
    org, lambda_context, webhook_env, receivers
):
    endpoint, _ = _endpoint(org.id, receivers.url("fail"))
    event = _event(org.id)
    _deliver(lambda_context, bridge_event(event))
    delivery_id = _delivery(endpoint.id, event["id"]).id
    webhook_store.delete_endpoint(org.id, endpoint.id)
    assert _deliver(lambda_context, {"deliveryId": delivery_id, "forAttempt": 1}) == {"batchItemFailures": []}
    assert len(receivers.received) == 1


def test_the_sample_batch_event_is_processed(lambda_context, webhook_env):
    assert dispatcher.handler(load_event("webhook_dispatcher/sqs_batch.json"), lambda_context) == {
        "batchItemFailures": []
    }


def test_dead_lettered_messages_are_redriven_by_the_operators_command_and_delivered_once(
    org, lambda_context, webhook_env, receivers, capsys
):
    """Messages the dispatcher failed five times sit in the dead-letter queue until an operator runs
    `verriflo webhooks redrive`; sending one twice (an interrupted run) is still one delivery."""
    import json

    from verriflo_tools import cli

    sqs = boto3.client("sqs")
    dlq = sqs.create_queue(QueueName="webhooks-test-dlq")["QueueUrl"]
    _endpoint(org.id, receivers.url("ok"))
    message = bridge_event(_event(org.id))
    for _ in range(2):  # the same event dead-lettered twice
        sqs.send_message(QueueUrl=dlq, MessageBody=json.dumps(message))

    assert cli.main(["--json", "webhooks", "redrive", "--dead-letter-queue-url", dlq]) == 0

    assert json.loads(capsys.readouterr().out) == {"moved": 2}
    assert sqs.receive_message(QueueUrl=dlq).get("Messages", []) == []
    bodies = queued(webhook_env["queue"])
    assert bodies == [message] * 2
    assert _deliver(lambda_context, *bodies) == {"batchItemFailures": []}
    assert len(receivers.to("ok")) == 1
    # nothing left: a second run moves nothing
    assert cli.main(["webhooks", "redrive", "--dead-letter-queue-url", dlq]) == 0
    assert "moved 0" in capsys.readouterr().out
