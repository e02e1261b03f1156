"""Credits and webhooks on the stack deployed to LocalStack: the balance over HTTP, and a domain event
travelling bus -> rule -> SQS -> dispatcher Lambda -> a real receiver on loopback, signed."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest
from standardwebhooks.webhooks import Webhook

pytestmark = pytest.mark.e2e
KEY = "VF-ORG-ID"


def test_the_balance_has_api_md_fields_over_http(http: httpx.Client, api_url: str, verriflo_cli):
    # An org of its own: the demo org's balance moves with whatever other tests spend.
    org = verriflo_cli("org", "create", f"e2e-balance-{uuid.uuid4().hex[:8]}", "--credits", "1000")
    key = org["apiKey"]
    reply = http.get(f"{api_url}/v1/billing/balance", headers={KEY: key})
    assert reply.status_code == 200, reply.text
    data = reply.json()["data"]
    assert data["type"] == "PREPAID" and data["currency"] == "BDT" and data["creditRate"] == 0.5
    assert data["status"] == "ACTIVE" and data["remainingCredits"] == 1000
    assert http.get(f"{api_url}/v1/billing/balance").status_code == 401
    usage = http.get(f"{api_url}/v1/billing/usage", headers={KEY: key}, params={"groupBy": "day"})
    assert usage.status_code == 200 and usage.json()["data"]["groupBy"] == "day"


def test_events_reach_a_webhook_receiver_signed_through_the_deployed_pipeline(
    http: httpx.Client,
    api_url: str,
    demo_key: str,
    demo_org_id: str,
    e2e_stack: dict[str, str],
    stack_aws,
    receivers,
):
    created = http.post(
        f"{api_url}/v1/webhooks",
        headers={KEY: demo_key},
        json={"url": receivers.url("ok"), "description": "e2e"},
    )
    assert created.status_code == 201, created.text
    endpoint, secret = created.json()["data"]["endpoint"], created.json()["data"]["secret"]
    try:
        # 1. A test event, queued by the API and delivered by the dispatcher Lambda.
        sent = http.post(f"{api_url}/v1/webhooks/{endpoint['id']}/test", headers={KEY: demo_key})
        assert sent.status_code == 202, sent.text
        # 2. A domain event put on the bus: the rule sends it to the queue, the dispatcher fans it out.
        event = {
            "id": f"evt_{uuid.uuid4().hex}",
            "type": "room.finished",
            "orgId": demo_org_id,
            "createdAt": "2026-11-28T15:00:00+00:00",
            "data": {"roomId": "e2e-room"},
        }
        bridge = stack_aws("events")
        for _ in range(2):  # published twice: still one delivery
            bridge.put_events(
                Entries=[
                    {
                        "Source": "verriflo",
                        "DetailType": "room.finished",
                        "Detail": json.dumps(event),
                        "EventBusName": e2e_stack["STACK_OUTPUT_EventBusName"],
                    }
                ]
            )
        got = receivers.wait_for(2, timeout=90)
        types = sorted(json.loads(r.body)["type"] for r in got)
        assert types == ["room.finished", "webhook.test"], types
        for r in got:
            assert Webhook(secret).verify(r.body, r.headers)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            log = http.get(f"{api_url}/v1/webhooks/{endpoint['id']}/deliveries", headers={KEY: demo_key})
            items = log.json()["data"]["items"]
            if len(items) == 2 and all(i["status"] == "succeeded" for i in items):
                break
            time.sleep(0.5)
        assert len(items) == 2 and all(i["status"] == "succeeded" for i in items), items
        assert len(receivers.received) == 2  # the event published twice was delivered once
    finally:
        http.delete(f"{api_url}/v1/webhooks/{endpoint['id']}", headers={KEY: demo_key})
