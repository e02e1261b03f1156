"""`sam local start-api` / `sam local invoke` need no Docker to check their inputs: the env file.

SAM's local runner sets only the variables a function's template declares, from the env file when it
names them, else from what SAM resolves itself (literals and parameters; a resource's `Ref` becomes
its logical id, an `Fn::If` or `Fn::GetAtt` a blank). So env.example.json must name every variable
SAM cannot resolve, agree with the template's local branch where the value is fixed, and name
nothing the template does not declare (SAM would drop it silently).
"""

from __future__ import annotations

import json
import re
from typing import Any

import boto3
import pytest
from support import ROOT

from scripts import sam_env

ENV_FILE = ROOT / "env.example.json"
TEMPLATE = sam_env.load_template()
PARAMETERS = TEMPLATE["Parameters"]
# what `make up` deploys: LocalStack's account and region, stack "verriflo", Stage=local
PSEUDO = {"AWS::StackName": "verriflo", "AWS::AccountId": "000000000000", "AWS::Region": "us-east-1"}
LOCAL = {name: spec.get("Default") for name, spec in PARAMETERS.items()} | {"Stage": "local"} | PSEUDO
UNRESOLVED = object()  # a resource's name or attribute: known only once deployed
# addresses as a container sees them, and the log level: the user's choice
USERS_CHOICE = {"MONGODB_URI", "REDIS_URL", "AWS_ENDPOINT_URL", "POWERTOOLS_LOG_LEVEL"}


def _condition(expr: Any) -> bool:
    (fn, args), *_ = expr.items()
    match fn:
        case "Condition":
            return _condition(TEMPLATE["Conditions"][args])
        case "Fn::Equals":
            return _value(args[0]) == _value(args[1])
        case "Fn::Not":
            return not _condition(args[0])
        case "Fn::And":
            return all(_condition(a) for a in args)
        case "Fn::Or":
            return any(_condition(a) for a in args)
    raise AssertionError(f"condition {fn} unknown to this test")


def _value(expr: Any) -> Any:
    """A value as CloudFormation resolves it for the local stage; UNRESOLVED for deployed names."""
    if not isinstance(expr, dict):
        return expr if isinstance(expr, str) else str(expr)
    (fn, args), *_ = expr.items()
    match fn:
        case "Ref":
            return LOCAL[args] if args in LOCAL else UNRESOLVED
        case "Fn::If":
            return _value(args[1] if _condition(TEMPLATE["Conditions"][args[0]]) else args[2])
        case "Fn::Sub":
            names = re.findall(r"\$\{([^}]+)\}", args)
            if any(name not in LOCAL for name in names):
                return UNRESOLVED
            return re.sub(r"\$\{([^}]+)\}", lambda m: str(LOCAL[m.group(1)]), args)
        case _:  # Fn::GetAtt and the rest: deployed attributes
            return UNRESOLVED


def _sam_resolves(expr: Any) -> bool:
    """What SAM's local runner resolves itself: literals and parameters (--parameter-overrides)."""
    return not isinstance(expr, dict) or (set(expr) == {"Ref"} and expr["Ref"] in PARAMETERS)


def _local_functions() -> dict[str, dict[str, Any]]:
    local = {}
    for name, variables in sam_env.template_variables(TEMPLATE).items():
        condition = TEMPLATE["Resources"][name].get("Condition")
        if condition is None or _condition(TEMPLATE["Conditions"][condition]):
            local[name] = variables
    return local


def _env_for(function: str, env_file: dict[str, dict[str, str]]) -> dict[str, str]:
    return env_file.get("Parameters", {}) | env_file.get(function, {})


def test_the_env_file_names_every_variable_sam_cannot_resolve():
    env_file = json.loads(ENV_FILE.read_text())
    functions = _local_functions()
    assert len(functions) >= 15
    missing = {
        f"{function}.{name}"
        for function, variables in functions.items()
        for name, expr in variables.items()
        if not _sam_resolves(expr) and name not in _env_for(function, env_file)
    }
    assert not missing, f"add to {ENV_FILE.name}: {sorted(missing)}"


def test_the_env_file_agrees_with_the_templates_local_stage():
    env_file = json.loads(ENV_FILE.read_text())
    wrong = {}
    for function, variables in _local_functions().items():
        env = _env_for(function, env_file)
        for name, expr in variables.items():
            if name not in env or name in USERS_CHOICE:
                continue
            expected = _value(expr)
            if expected is UNRESOLVED:
                if not env[name]:
                    wrong[f"{function}.{name}"] = "empty: the deployed name is needed (make sam-env)"
            elif env[name] != expected:
                wrong[f"{function}.{name}"] = f"{env[name]!r}, the template gives {expected!r}"
    assert not wrong, wrong


def test_the_env_file_names_nothing_the_template_does_not_declare():
    env_file = json.loads(ENV_FILE.read_text())
    functions = _local_functions()
    declared = {name for variables in functions.values() for name in variables}
    assert set(env_file) - {"Parameters"} <= set(functions), "sections must be function logical ids"
    dead = {
        f"{section}.{name}"
        for section, values in env_file.items()
        for name in values
        if name not in (declared if section == "Parameters" else functions[section])
    }
    assert not dead, f"SAM ignores variables a function does not declare: {sorted(dead)}"


def test_the_stack_env_file_holds_each_deployed_functions_variables(aws_env: None):
    """`make sam-env`: the variables of the functions a deployed stack holds, for a container."""
    iam = boto3.client("iam")
    role = iam.create_role(RoleName="fn", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    function = {
        "Type": "AWS::Lambda::Function",
        "Properties": {
            "Runtime": "python3.13",
            "Handler": "health.handler.handler",
            "Role": role,
            "Code": {"ZipFile": "def handler(event, context): return {}"},
            "Environment": {
                "Variables": {"REDIS_URL": "redis://127.0.0.1:6390/0", "MEDIA_BUCKET": "verriflo-media-x1"}
            },
        },
    }
    bus = {"Type": "AWS::Events::EventBus", "Properties": {"Name": "other"}}  # not a function: left out
    cloudformation = boto3.client("cloudformation")
    cloudformation.create_stack(
        StackName="verriflo",
        TemplateBody=json.dumps({"Resources": {"HealthFunction": function, "Bus": bus}}),
    )
    env = sam_env.from_stack("verriflo", "host.docker.internal", "http://localhost:4566")
    assert env == {
        "Parameters": {"AWS_ENDPOINT_URL": "http://host.docker.internal:4566"},
        "HealthFunction": {
            "MEDIA_BUCKET": "verriflo-media-x1",
            "REDIS_URL": "redis://host.docker.internal:6390/0",
        },
    }


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("http://127.0.0.1:4566", "http://host.docker.internal:4566"),
        ("mongodb://localhost:27017/v?x=1", "mongodb://host.docker.internal:27017/v?x=1"),
        ("http://127.0.0.1.example.com/", "http://127.0.0.1.example.com/"),
        ("verriflo/jwt-secret", "verriflo/jwt-secret"),
    ],
)
def test_only_this_hosts_addresses_are_rewritten(value: str, expected: str):
    assert sam_env.for_container(value, "host.docker.internal") == expected
