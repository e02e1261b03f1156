"""Every sample event in events/ invokes its function as `sam local invoke -e` would, in-process.

SAM picks the function (an API event: the function whose `Api` event has that resource and method,
as `sam local start-api` routes; any other event: the function named on the command line, here the
table below), imports the template's `Handler` from the function's code, and calls it with the event
and a context. Here the handler runs against the integration servers (MongoDB wire, Redis, moto),
with the function's own variables from the template's local stage, and the placeholders a user
replaces (org key, dispatch secret) filled in for a fresh org. An event that no longer fits its
handler (a renamed route, a changed payload) answers 5xx or raises, and fails here.
"""

from __future__ import annotations

import importlib
import json
import re
from typing import Any

import boto3
import pytest
from support import EVENTS, ROOT, OrgFixture, load_event

from scripts import sam_env

TEMPLATE = sam_env.load_template()
PARAMETERS = TEMPLATE["Parameters"]
# the handler of the events that are not API requests (sam local invoke <function> -e <event>)
NOT_API = {
    "authorizer/request.json": "AuthorizerFunction",
    "ai_ingest/document_queued.json": "AiIngestFunction",
    "ai_ingest/captions_ready.json": "VideoIndexFunction",
    "ai_tutor/summary_step.json": "TutorSummaryFunction",
    "billing/sweep.json": "BillingSweepFunction",
    "captions/video_started.json": "CaptionsFunction",
    "transcode/chunk_step.json": "TranscodeStepFunction",
    "transcode/retention_schedule.json": "RecordingRetentionFunction",
    "transcode/s3_object_created.json": "TranscodeFunction",
    "webhook_dispatcher/sqs_batch.json": "WebhookDispatcherFunction",
    "webhook_dispatcher/sweep.json": "WebhookSweepFunction",
}
# the input of a state machine, which its EventBridge rule starts (no function takes it as it is)
STATE_MACHINE_INPUT = {"ai_tutor/room_finished.json": "ClassSummary"}
# what the fixtures point at (servers, moto's bus, buckets and secrets, the LiveKit stand-in)
FIXTURES_OWN = {"MONGODB_URI", "REDIS_URL", "EVENT_BUS_NAME", "MEDIA_BUCKET", "JWT_SECRET_NAME"}
FIXTURES_OWN |= {"DISPATCH_SECRET_NAME", "POWERTOOLS_TRACE_DISABLED", "AWS_ENDPOINT_URL"}
FIXTURES_OWN |= {"LIVEKIT_URL", "LIVE_UI_URL", "RECORDINGS_BUCKET"}
# functions that talk to LiveKit (their secret and server: the stand-in)
WITH_LIVEKIT = {"RoomsFunction", "RoomsSweepFunction", "TutorFunction"}
pytest_plugins = ("livekit_support", "health_support")


def _is_local(resource: dict[str, Any]) -> bool:
    return resource.get("Condition") in (None, "IsLocal")


def _api_routes() -> dict[tuple[str, str], str]:
    """(method, resource path) -> the function's logical id, for the local stage, as `sam local
    start-api --parameter-overrides Stage=local` routes them."""
    routes = {}
    for name, resource in TEMPLATE["Resources"].items():
        if resource["Type"] != "AWS::Serverless::Function" or not _is_local(resource):
            continue
        for event in (resource["Properties"].get("Events") or {}).values():
            if event["Type"] == "Api":
                routes[(event["Properties"]["Method"].upper(), event["Properties"]["Path"])] = name
    # the methods the Api declares itself (the streamed routes): the local branch of their integration
    body = TEMPLATE["Resources"]["Api"]["Properties"].get("DefinitionBody") or {}
    for path, ops in (body.get("paths") or {}).items():
        for method, op in ops.items():
            integration = op["x-amazon-apigateway-integration"]
            if set(integration) == {"Fn::If"} and integration["Fn::If"][0] == "IsAws":
                integration = integration["Fn::If"][2]
            function = re.search(r"\$\{(\w+)\.Arn\}", integration["uri"]["Fn::Sub"]).group(1)
            routes[(method.upper(), path)] = function
    return routes


def _shape(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def _function_of(name: str, event: dict[str, Any]) -> str:
    if "httpMethod" not in event:
        assert name in NOT_API, f"events/{name}: name its function in NOT_API"
        return NOT_API[name]
    by_shape = {(method, _shape(path)): fn for (method, path), fn in _api_routes().items()}
    key = (event["httpMethod"], _shape(event["resource"]))
    found = by_shape.get(key) or by_shape.get(("ANY", key[1]))
    assert found, f"events/{name}: no function of the local stage serves {key}"
    return found


def _literal_variables(function: str) -> dict[str, str]:
    """The function's variables whose local-stage value is a literal or a parameter's default."""
    values = {}
    for name, expr in sam_env.template_variables(TEMPLATE)[function].items():
        if name in FIXTURES_OWN:
            continue
        if not isinstance(expr, dict):
            values[name] = str(expr)
        elif set(expr) == {"Ref"} and "Default" in PARAMETERS.get(expr["Ref"], {}):
            values[name] = str(PARAMETERS[expr["Ref"]]["Default"])
    return values


def _handler(function: str):
    properties = TEMPLATE["Resources"][function]["Properties"]
    module, _, attribute = properties["Handler"].rpartition(".")
    code = ROOT / properties["CodeUri"]
    assert (code / module.split(".")[0]).is_dir(), f"{function}: {module} is not in {code}"
    return getattr(importlib.import_module(module), attribute)


def _fill_placeholders(event: dict[str, Any], org: OrgFixture) -> dict[str, Any]:
    secret = boto3.client("secretsmanager").get_secret_value(SecretId="verriflo/dispatch-secret")
    text = json.dumps(event)
    text = re.sub(r"vfk_(00000000_)?replace-with-[a-z-]+", org.key, text)
    text = text.replace("replace-with-the-dispatch-secret", secret["SecretString"])
    return json.loads(text)


SAMPLES = sorted(str(path.relative_to(EVENTS)) for path in EVENTS.glob("*/*.json"))
INVOKED = [name for name in SAMPLES if name not in STATE_MACHINE_INPUT]


def _json_path(document: Any, path: str) -> Any:
    """`$.a.b` of a Step Functions path (what the ASL below uses)."""
    for part in path.removeprefix("$.").split("."):
        document = document[part]
    return document


def test_every_event_folder_has_events():
    assert len(SAMPLES) >= 80
    assert set(NOT_API) | set(STATE_MACHINE_INPUT) <= set(SAMPLES)


@pytest.mark.parametrize("name", sorted(STATE_MACHINE_INPUT))
def test_the_state_machine_input_is_what_its_rule_and_first_state_read(name: str):
    event, machine = load_event(name), TEMPLATE["Resources"][STATE_MACHINE_INPUT[name]]
    (rule,) = (e for e in machine["Properties"]["Events"].values() if e["Type"] == "EventBridgeRule")
    for field, allowed in rule["Properties"]["Pattern"].items():
        assert event[field] in allowed, field
    definition = json.loads((ROOT / machine["Properties"]["DefinitionUri"]).read_text())
    first = definition["States"][definition["StartAt"]]
    for key, path in first["Parameters"].items():
        if key.endswith(".$") and path.startswith("$."):
            assert _json_path(event, path), f"{name} has no {path}"


@pytest.mark.parametrize("name", INVOKED)
def test_the_sample_event_invokes_its_handler(
    name: str,
    org: OrgFixture,
    lambda_context: Any,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
):
    from transcode.logic import Superseded
    from verriflo import settings
    from verriflo.errors import VerrifloError

    event = load_event(name)
    function = _function_of(name, event)
    if function in WITH_LIVEKIT:
        request.getfixturevalue("livekit")
    for variable, value in _literal_variables(function).items():
        monkeypatch.setenv(variable, value)
    if function == "HealthFunction":  # readiness probes the stack's LiveKit, secrets, queues, machines
        request.getfixturevalue("health_dependencies")
    settings.reset_settings()
    for record in event.get("Records", []):  # the bucket an S3 sample names
        if "s3" in record:
            boto3.client("s3").create_bucket(Bucket=record["s3"]["bucket"]["name"])
    handler = _handler(function)
    try:
        result = handler(_fill_placeholders(event, org), lambda_context)
    except VerrifloError as exc:  # a task's answer to the sample's made-up ids (Step Functions' Catch)
        assert "httpMethod" not in event and exc.status < 500, exc
        return
    except Superseded:  # the chunked transcode's answer to a job it does not hold: stop quietly
        assert function == "TranscodeStepFunction"
        return
    if "httpMethod" in event:
        assert isinstance(result, dict) and isinstance(result.get("statusCode"), int), result
        body = json.loads(result["body"]) if result.get("body") else {}
        assert result["statusCode"] < 500, (result["statusCode"], body)
