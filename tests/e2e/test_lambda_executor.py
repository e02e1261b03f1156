"""The project's LocalStack Lambda executor (localstack/verriflo_localstack): functions created
through the Lambda API run as host processes with AWS's semantics — results, errors, timeouts,
isolated environments, layers, logs in CloudWatch Logs — on a LocalStack of their own."""

from __future__ import annotations

import base64
import io
import json
import os
import textwrap
import time
import uuid
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
ROLE = "arn:aws:iam::000000000000:role/lambda-test"

PROBE = """
import json, os, sys, time
print("probe init")

def handler(event, context):
    action = event.get("action")
    print("probe says", event.get("marker", ""))
    if action == "fail":
        raise ValueError("probe failed on purpose")
    if action == "sleep":
        time.sleep(event["seconds"])
    if action == "exit":
        os._exit(7)
    if action == "import":
        try:
            __import__(event["module"])
            return {"imported": True, "file": getattr(sys.modules[event["module"]], "__file__", None)}
        except ImportError:
            return {"imported": False}
    if action == "layered":
        import shared
        return {"value": shared.VALUE, "file": shared.__file__}
    return {
        "env": dict(os.environ),
        "executable": sys.executable,
        "cwd": os.getcwd(),
        "remaining_ms": context.get_remaining_time_in_millis(),
        "request_id": context.aws_request_id,
    }
"""


def zip_bytes(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, textwrap.dedent(content))
    return buffer.getvalue()


def create_function(
    aws,
    *,
    timeout: int = 10,
    env: dict | None = None,
    layers: list[str] | None = None,
    files: dict[str, str] | None = None,
    handler: str = "probe.handler",
) -> str:
    name = f"probe-{uuid.uuid4().hex[:8]}"
    lam = aws("lambda")
    lam.create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=ROLE,
        Handler=handler,
        Timeout=timeout,
        Code={"ZipFile": zip_bytes(files or {"probe.py": PROBE})},
        Environment={"Variables": env or {}},
        Layers=layers or [],
    )
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 150}
    )
    return name


def invoke(aws, name: str, event: dict | None = None) -> tuple[dict, str | None, str]:
    response = aws("lambda").invoke(FunctionName=name, Payload=json.dumps(event or {}), LogType="Tail")
    logs = base64.b64decode(response.get("LogResult", "")).decode()
    return json.loads(response["Payload"].read()), response.get("FunctionError"), logs


def publish_layer(aws, files: dict[str, str]) -> str:
    response = aws("lambda").publish_layer_version(
        LayerName=f"layer-{uuid.uuid4().hex[:8]}",
        Content={"ZipFile": zip_bytes(files)},
        CompatibleRuntimes=["python3.13"],
    )
    return response["LayerVersionArn"]


def test_invoke_returns_the_handler_result_from_the_runtime_interpreter(aws) -> None:
    name = create_function(aws, timeout=7)

    result, error, logs = invoke(aws, name)

    assert error is None
    # one interpreter per runtime: the clean python3.13 runtime venv, not LocalStack's or the project's
    assert result["executable"] == str(REPO / ".venv-lambda-python3.13" / "bin" / "python")
    assert 0 < result["remaining_ms"] <= 7000
    assert result["env"]["LAMBDA_TASK_ROOT"] == result["cwd"]
    assert f"START RequestId: {result['request_id']}" in logs
    assert f"REPORT RequestId: {result['request_id']}" in logs


def test_handler_exception_is_an_unhandled_function_error(aws) -> None:
    name = create_function(aws)

    result, error, logs = invoke(aws, name, {"action": "fail"})

    assert error == "Unhandled"
    assert result["errorType"] == "ValueError"
    assert result["errorMessage"] == "probe failed on purpose"
    assert any("probe.py" in frame for frame in result["stackTrace"])
    assert "[ERROR] ValueError: probe failed on purpose" in logs


def test_timeout_is_enforced_and_the_next_invoke_gets_a_fresh_runtime(aws) -> None:
    name = create_function(aws, timeout=1)

    started = time.monotonic()
    result, error, logs = invoke(aws, name, {"action": "sleep", "seconds": 30})
    elapsed = time.monotonic() - started

    assert error == "Unhandled"
    assert result["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in result["errorMessage"]
    assert "Task timed out after 1.00 seconds" in logs
    assert elapsed < 10, elapsed  # killed at the deadline, not after the 30 s sleep
    after, error_after, _ = invoke(aws, name)
    assert error_after is None and "env" in after


def test_runtime_crash_is_reported_and_the_environment_recovers(aws) -> None:
    name = create_function(aws)

    result, error, _ = invoke(aws, name, {"action": "exit"})

    assert error == "Unhandled"
    assert result["errorType"] == "Runtime.ExitError"
    assert "exit status 7" in result["errorMessage"]
    after, error_after, _ = invoke(aws, name)
    assert error_after is None and "env" in after


def test_import_failure_is_an_init_error(aws) -> None:
    name = create_function(aws, handler="missing_module.handler")

    result, error, _ = invoke(aws, name)

    assert error == "Unhandled"
    assert result["errorType"] == "Runtime.ImportModuleError"
    assert "missing_module" in result["errorMessage"]


def test_function_sees_only_its_own_variables_and_the_runtime_ones(aws) -> None:
    first = create_function(aws, env={"PROBE_SETTING": "first", "ONLY_IN_FIRST": "1"})
    second = create_function(aws, env={"PROBE_SETTING": "second"})

    env_first = invoke(aws, first)[0]["env"]
    env_second = invoke(aws, second)[0]["env"]

    assert env_first["PROBE_SETTING"] == "first" and env_first["ONLY_IN_FIRST"] == "1"
    assert env_second["PROBE_SETTING"] == "second" and "ONLY_IN_FIRST" not in env_second
    assert env_first["AWS_LAMBDA_FUNCTION_NAME"] == first
    assert env_first["_HANDLER"] == "probe.handler"
    assert env_first["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.13"
    assert env_first["AWS_LAMBDA_RUNTIME_API"].startswith("127.0.0.1:")
    assert env_first["AWS_ENDPOINT_URL"].startswith("http://127.0.0.1:")
    # nothing of LocalStack's own process or settings leaks in
    allowed_plain = {
        "PATH",
        "LANG",
        "LC_CTYPE",
        "TZ",
        "LD_LIBRARY_PATH",
        "PYTHONPATH",
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "_AWS_XRAY_DAEMON_ADDRESS",
        "_AWS_XRAY_DAEMON_PORT",
        "PROBE_SETTING",
        "ONLY_IN_FIRST",
    }
    unexpected = {k for k in env_first if not k.startswith(("AWS_", "LAMBDA_")) and k not in allowed_plain}
    assert unexpected == set()
    assert not any(k.startswith("LOCALSTACK_") for k in env_first)
    assert ".venv-localstack" not in env_first["PATH"]


def test_runtime_has_boto3_but_not_the_projects_packages(aws) -> None:
    name = create_function(aws)

    assert invoke(aws, name, {"action": "import", "module": "boto3"})[0]["imported"] is True
    # pydantic is in the project's and LocalStack's venvs: a function gets it only from a layer
    assert invoke(aws, name, {"action": "import", "module": "pydantic"})[0]["imported"] is False


def test_layers_are_on_the_path_and_a_later_layer_wins(aws) -> None:
    first = publish_layer(aws, {"python/shared.py": "VALUE = 'first'\n", "python/only_first.py": "X = 1\n"})
    second = publish_layer(aws, {"python/lib/python3.13/site-packages/shared.py": "VALUE = 'second'\n"})
    name = create_function(aws, layers=[first, second])

    layered = invoke(aws, name, {"action": "layered"})[0]
    only_first = invoke(aws, name, {"action": "import", "module": "only_first"})[0]

    # AWS extracts layers into /opt in order, so the later layer's module shadows the earlier one
    assert layered["value"] == "second"
    assert only_first["imported"] is True


def test_function_output_reaches_cloudwatch_logs(aws) -> None:
    name = create_function(aws)
    marker = uuid.uuid4().hex

    invoke(aws, name, {"marker": marker})

    logs = aws("logs")
    deadline = time.monotonic() + 30
    messages: list[str] = []
    while time.monotonic() < deadline:  # LocalStack ships logs from a background queue
        try:
            events = logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]
        except logs.exceptions.ResourceNotFoundException:
            events = []
        messages = [e["message"] for e in events]
        if any(marker in m for m in messages):
            break
        time.sleep(0.2)
    assert any(f"probe says {marker}" in m for m in messages), messages
    assert any(m.startswith("REPORT RequestId:") for m in messages)


def _all_messages(logs, group: str) -> list[str]:
    pages = logs.get_paginator("filter_log_events").paginate(logGroupName=group)
    return [e["message"] for page in pages for e in page["events"]]


def test_lambda_log_groups_keep_their_newest_events_only(aws) -> None:
    # LocalStack (moto) keeps every log event in memory for good; our plugin caps each Lambda log
    # group (localstack/verriflo_localstack/lambda_logs.py), so its memory stays flat under use
    cap = int(os.environ.get("VERRIFLO_LOCALSTACK_LAMBDA_LOG_EVENTS", "2000"))
    if cap == 0:
        pytest.skip("the cap is off (VERRIFLO_LOCALSTACK_LAMBDA_LOG_EVENTS=0)")
    name = create_function(aws)
    invoke(aws, name)  # the function's group exists (LocalStack ships its logs from a queue)
    logs = aws("logs")
    lambda_group, other_group = f"/aws/lambda/{name}", f"/verriflo/test/{name}"
    logs.create_log_group(logGroupName=other_group)
    deadline = time.monotonic() + 30
    while not logs.describe_log_groups(logGroupNamePrefix=lambda_group)["logGroups"]:
        assert time.monotonic() < deadline, "the function's log group never appeared"
        time.sleep(0.2)
    for group in (lambda_group, other_group):
        logs.create_log_stream(logGroupName=group, logStreamName="bulk")
    batches = 3 * cap // 1000 + 1  # well past the cap and its slack
    for batch in range(batches):
        now_ms = int(time.time() * 1000)
        events = [{"timestamp": now_ms, "message": f"line {batch}-{i}"} for i in range(1000)]
        for group in (lambda_group, other_group):
            logs.put_log_events(logGroupName=group, logStreamName="bulk", logEvents=events)

    kept = _all_messages(logs, lambda_group)
    assert cap <= len(kept) <= cap + cap // 4, len(kept)
    assert f"line {batches - 1}-999" in kept and "line 0-0" not in kept  # the oldest went first
    assert len(_all_messages(logs, other_group)) == batches * 1000  # other groups keep everything
