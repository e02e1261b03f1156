"""Domain events reach the EventBridge bus with the dotted name as detail-type (moto)."""

from __future__ import annotations

import json

import boto3
from verriflo import events


def test_published_events_reach_a_rule_target_with_org_and_type(aws_env):
    sqs = boto3.client("sqs")
    queue = sqs.create_queue(QueueName="sink")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    bridge = boto3.client("events")
    bridge.put_rule(
        Name="all", EventBusName="verriflo-test-events", EventPattern=json.dumps({"source": ["verriflo"]})
    )
    bridge.put_targets(Rule="all", EventBusName="verriflo-test-events", Targets=[{"Id": "q", "Arn": arn}])

    sent = events.publish("room.started", "org_1", {"roomId": "math-101"})

    messages = sqs.receive_message(QueueUrl=queue, WaitTimeSeconds=1).get("Messages", [])
    assert len(messages) == 1
    envelope = json.loads(messages[0]["Body"])
    assert envelope["detail-type"] == "room.started"
    assert envelope["detail"] == json.loads(json.dumps(sent))
    assert envelope["detail"]["orgId"] == "org_1" and envelope["detail"]["id"].startswith("evt_")


def test_many_events_are_sent_in_batches_of_ten(aws_env):
    built = [events.build("video.ready", "org_1", {"n": i}) for i in range(23)]
    assert events.publish_many(built) == built
