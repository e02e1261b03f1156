"""Test helpers shared by every suite: the Lambda context, sample events, calling handlers, orgs."""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EVENTS = ROOT / "events"


@dataclass
class LambdaContext:
    """The part of the Lambda context object our handlers and Powertools read."""

    function_name: str = "verriflo-test"
    function_version: str = "$LATEST"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:000000000000:function:verriflo-test"
    memory_limit_in_mb: int = 512
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    log_group_name: str = "/aws/lambda/verriflo-test"
    log_stream_name: str = "test"

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def load_event(name: str) -> dict[str, Any]:
    """A sample event from events/ (the same files `sam local invoke -e` uses)."""
    return json.loads((EVENTS / name).read_text())


def api_event(
    name: str,
    *,
    headers: dict[str, str] | None = None,
    body: Any = None,
    raw_body: str | None = None,
    path: str | None = None,
    method: str | None = None,
    path_params: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A sample API Gateway event with the given changes."""
    event = copy.deepcopy(load_event(name))
    if headers is not None:
        event["headers"] = {
            k: v
            for k, v in (event.get("headers") or {}).items()
            if k.lower() not in ("vf-org-id", "authorization")
        } | headers
    if body is not None:
        event["body"] = json.dumps(body)
        event["headers"]["Content-Type"] = "application/json"
    if raw_body is not None:
        event["body"] = raw_body
    if path is not None:
        event["path"] = path
    if method is not None:
        event["httpMethod"] = method
    if path_params is not None:
        event["pathParameters"] = path_params
    if query is not None:
        event["queryStringParameters"] = query
    event["requestContext"]["requestId"] = str(uuid.uuid4())
    return event


@dataclass
class OrgFixture:
    org: Any
    key: str
    owner_email: str
    owner_password: str

    @property
    def id(self) -> str:
        return self.org.id

    @property
    def headers(self) -> dict[str, str]:
        return {"VF-ORG-ID": self.key}


def make_org(name: str) -> OrgFixture:
    """An org with one API key and an owner who can log in to the dashboard."""
    from verriflo import auth, orgs

    org = orgs.create_org(name)
    issued = orgs.issue_key(org.id, "test")
    email = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    password = "correct horse battery staple " + uuid.uuid4().hex[:6]
    orgs.create_user(org.id, email, auth.hash_password(password), role="owner")
    return OrgFixture(org=org, key=issued.secret, owner_email=email, owner_password=password)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: Any

    @property
    def data(self) -> Any:
        assert self.body["success"] is True, self.body
        return self.body["data"]


def call(handler: Any, event: dict[str, Any], context: Any) -> Reply:
    """Invoke a function's Lambda handler with an API Gateway event and decode its answer."""
    result = handler(event, context)
    headers = {k: v for k, v in (result.get("headers") or {}).items()}
    for k, values in (result.get("multiValueHeaders") or {}).items():
        headers.setdefault(k, values[-1] if isinstance(values, list) else values)
    body = result.get("body")
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = body
    return Reply(status=result["statusCode"], headers=headers, body=parsed)


@dataclass
class EventTap:
    """Domain events published to the bus, read back through an SQS queue (moto routes rules);
    `prefixes` keeps only the event names a test watches (e.g. `("video.",)`)."""

    queue_url: str
    prefixes: tuple[str, ...] = ()

    def drain(self) -> list[dict[str, Any]]:
        """The events published since the last drain (detail bodies), oldest first."""
        import boto3

        sqs = boto3.client("sqs")
        found: list[dict[str, Any]] = []
        while True:
            batch = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return found
            for message in batch:
                detail = json.loads(message["Body"])["detail"]
                if not self.prefixes or detail["type"].startswith(self.prefixes):
                    found.append(detail)
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def types(self) -> list[str]:
        """The names of the events published since the last drain."""
        return [e["type"] for e in self.drain()]


def tap_events(bus: str = "verriflo-test-events", prefixes: tuple[str, ...] = ()) -> EventTap:
    """Route every event on `bus` to a fresh SQS queue."""
    import boto3

    sqs, events = boto3.client("sqs"), boto3.client("events")
    name = f"tap-{uuid.uuid4().hex[:8]}"
    url = sqs.create_queue(QueueName=name)["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name=name, EventBusName=bus, EventPattern=json.dumps({"source": ["verriflo"]}))
    events.put_targets(Rule=name, EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    return EventTap(url, prefixes)


def point_at_closed_port(monkeypatch: Any, variable: str, url: str) -> None:
    """Point the common layer's store `variable` (MONGODB_URI, REDIS_URL) at `url`, a dead server,
    with short timeouts, and drop the cached clients so the next call finds it down."""
    from verriflo import auth, cache, db, settings

    monkeypatch.setenv(variable, url)
    monkeypatch.setenv("MONGODB_TIMEOUT_MS", "300")
    monkeypatch.setenv("REDIS_TIMEOUT_S", "0.3")
    settings.reset_settings()
    db.reset_client()
    cache.reset_client()
    auth.clear_cache()
