"""The template as AWS would take it: SAM's transform of each stage, deployed where it can be here.

- `Stage=aws`, transformed by SAM's own translator (the SAM venv's samtranslator, as `sam deploy`
  does), is created as a stack in moto's CloudFormation: every resource moto can model is created
  and the stack completes. What moto cannot deploy is listed (MOTO_CANNOT, and README "Deploying to
  AWS"); those resources are left out and references to them replaced by placeholders.
- Every IAM statement of either stage with `Resource: "*"` is one the template explains with a
  comment naming the service rule that requires it.
- The streamed routes stream through the one API in AWS (Lambda response streaming, same authorizer
  and paths) and stay buffered (Mangum) on LocalStack; no public Function URL remains.
"""

from __future__ import annotations

import importlib
import io
import json
import re
import subprocess
import zipfile
from pathlib import Path
from typing import Any

import boto3
import pytest

from scripts import sam_env

ROOT = Path(__file__).resolve().parents[2]
SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"
ARTIFACTS = "verriflo-artifacts"
PARAMETERS = {"MongoDbUri": "mongodb://db.example/verriflo", "RedisUrl": "rediss://cache.example:6379/0"}

# resource type -> why moto (5.2.5) cannot create it
MOTO_CANNOT = {
    "AWS::ApiGateway::RestApi": "moto needs a Name; SAM defines the API by its OpenAPI Body",
    "AWS::ApiGateway::Deployment": "belongs to the REST API above",
    "AWS::ApiGateway::Stage": "no moto CloudFormation model",
    "AWS::ApiGateway::DomainName": "no moto CloudFormation model (only with ApiDomainName)",
    "AWS::ApiGateway::BasePathMapping": "no moto CloudFormation model (only with ApiDomainName)",
    "AWS::CloudFront::Distribution": "no moto CloudFormation model",
    "AWS::CloudFront::KeyGroup": "no moto CloudFormation model",
    "AWS::CloudFront::OriginAccessControl": "no moto CloudFormation model",
    "AWS::CloudFront::PublicKey": "no moto CloudFormation model",
    "AWS::CloudWatch::Alarm": "no moto CloudFormation model",
    "AWS::Lambda::EventInvokeConfig": "no moto CloudFormation model",
    "AWS::S3::BucketPolicy": "no moto CloudFormation model",
    "AWS::SQS::QueuePolicy": "no moto CloudFormation model",
    "AWS::SecretsManager::Secret": "no moto CloudFormation model",
}

# What `sam deploy` does before the transform: local code folders become S3 objects (here: one
# placeholder zip each), local state machine definitions are read in.
_TRANSFORM = """
import json, sys
from pathlib import Path
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

class NoManagedPolicies:
    def load(self):
        return {}

template = yaml_parse(Path("template.yaml").read_text())
for name, resource in template["Resources"].items():
    properties = resource.get("Properties") or {}
    for key in ("CodeUri", "ContentUri"):
        if isinstance(properties.get(key), str) and not properties[key].startswith("s3://"):
            properties[key] = f"s3://ARTIFACTS/{name}.zip"
    if isinstance(properties.get("DefinitionUri"), str):
        properties["Definition"] = json.loads(Path(properties.pop("DefinitionUri")).read_text())
print(json.dumps(transform(template, json.loads(sys.argv[1]), NoManagedPolicies())))
""".replace("ARTIFACTS", ARTIFACTS)


def _in_sam_venv(script: str, stage: str) -> Any:
    """The JSON that `script`, run by the SAM venv's Python with the stage's parameters, prints last."""
    assert SAM_PYTHON.exists(), ".venv-sam missing: make deps builds it"
    done = subprocess.run(
        [str(SAM_PYTHON), "-c", script, json.dumps({"Stage": stage, **PARAMETERS})],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin", "SAM_CLI_TELEMETRY": "0"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def _transformed(stage: str) -> dict[str, Any]:
    return _in_sam_venv(_TRANSFORM, stage)


@pytest.fixture(scope="module")
def templates() -> dict[str, dict[str, Any]]:
    return {stage: _transformed(stage) for stage in ("aws", "local")}


def _moto_models() -> set[str]:
    import moto.backends
    from moto.cloudformation.parsing import get_model_map

    for name in moto.backends.list_of_moto_modules():
        try:
            importlib.import_module(f"moto.{name}.models")
        except ImportError:
            continue  # a service whose optional dependencies are not installed
    return set(get_model_map())


def _without(template: dict[str, Any], dropped: set[str]) -> dict[str, Any]:
    """The template less `dropped`, references to them replaced by placeholder strings. EventBus
    references become the bus's name (moto's Ref of a bus is not its name: a moto bug)."""
    buses = {
        n: r["Properties"]["Name"]
        for n, r in template["Resources"].items()
        if r["Type"] == "AWS::Events::EventBus"
    }

    def stub(node: Any) -> Any:
        if isinstance(node, list):
            return [stub(v) for v in node]
        if not isinstance(node, dict):
            return node
        if set(node) == {"Ref"} and node["Ref"] in buses:
            return stub(buses[node["Ref"]])
        if set(node) == {"Ref"} and node["Ref"] in dropped:
            return f"placeholder-{node['Ref']}"
        if set(node) == {"Fn::GetAtt"}:
            target = node["Fn::GetAtt"]
            target = target if isinstance(target, list) else target.split(".", 1)
            if target[0] in dropped:
                return f"placeholder-{target[0]}-{target[1]}"
        if set(node) == {"Fn::Sub"} and isinstance(node["Fn::Sub"], str):
            return {
                "Fn::Sub": re.sub(
                    r"\$\{([A-Za-z0-9]+)(\.[A-Za-z.]+)?\}",
                    lambda m: f"placeholder-{m.group(1)}" if m.group(1) in dropped else m.group(0),
                    node["Fn::Sub"],
                )
            }
        return {k: stub(v) for k, v in node.items()}

    resources = {}
    for name, resource in template["Resources"].items():
        if name in dropped:
            continue
        resource = stub(resource)
        depends = resource.pop("DependsOn", [])
        depends = [d for d in ([depends] if isinstance(depends, str) else depends) if d not in dropped]
        if depends:
            resource["DependsOn"] = depends
        resources[name] = resource
    return template | {"Resources": resources, "Outputs": stub(template.get("Outputs", {}))}


def test_the_aws_stage_deploys_in_motos_cloudformation(templates, aws_env: None):
    template = templates["aws"]
    models = _moto_models()
    types = {resource["Type"] for resource in template["Resources"].values()}
    cannot = {t for t in types if t not in models} | (
        types & {"AWS::ApiGateway::RestApi", "AWS::ApiGateway::Deployment"}
    )
    assert cannot == set(MOTO_CANNOT), "update MOTO_CANNOT and the README's list"
    dropped = {n for n, r in template["Resources"].items() if r["Type"] in cannot}
    deployable = _without(template, dropped)

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=ARTIFACTS)
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.writestr("placeholder.py", "def handler(event, context):\n    return {}\n")
    for resource in deployable["Resources"].values():
        for key in ("Code", "Content"):
            code = resource.get("Properties", {}).get(key)
            if isinstance(code, dict) and "S3Key" in code:
                s3.put_object(Bucket=code["S3Bucket"], Key=code["S3Key"], Body=package.getvalue())
    cloudformation = boto3.client("cloudformation")
    cloudformation.create_stack(
        StackName="verriflo",
        TemplateBody=json.dumps(deployable),
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_AUTO_EXPAND"],
        Parameters=[
            {"ParameterKey": k, "ParameterValue": v} for k, v in ({"Stage": "aws"} | PARAMETERS).items()
        ],
    )
    stack = cloudformation.describe_stacks(StackName="verriflo")["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    created = {
        summary["LogicalResourceId"]: summary["ResourceStatus"]
        for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName="verriflo")
        for summary in page["StackResourceSummaries"]
    }
    expected = {
        name
        for name, resource in deployable["Resources"].items()
        if resource.get("Condition") in (None, "IsAws")  # the others are off in this stage
    }
    assert set(created) >= expected and set(created.values()) == {"CREATE_COMPLETE"}
    assert len(created) >= 150
    functions = boto3.client("lambda").list_functions()["Functions"]
    assert len(functions) == sum(
        1 for n in expected if deployable["Resources"][n]["Type"] == "AWS::Lambda::Function"
    )


def test_the_readme_lists_what_moto_cannot_deploy():
    readme = (ROOT / "README.md").read_text()
    missing = [t for t in MOTO_CANNOT if f"`{t}`" not in readme]
    assert not missing, missing


def _star_statements(node: Any, found: list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(node, dict):
        if "Effect" in node and "Resource" in node:
            resources = node["Resource"] if isinstance(node["Resource"], list) else [node["Resource"]]
            if "*" in resources:
                found.append(node)
        for value in node.values():
            _star_statements(value, found)
    elif isinstance(node, list):
        for value in node:
            _star_statements(value, found)
    return found


def _explained_star_actions() -> set[frozenset[str]]:
    """The actions of each `Resource: "*"` statement of template.yaml that a comment explains: a
    comment right above the statement naming the service's rule (IAM Service Authorization Reference)."""
    lines = (ROOT / "template.yaml").read_text().splitlines()
    explained = set()
    for i, line in enumerate(lines):
        if line.strip() != 'Resource: "*"':
            continue
        start = next(j for j in range(i, -1, -1) if lines[j].lstrip().startswith("- Effect:"))
        comment = []
        for above in reversed(lines[:start]):
            if not above.lstrip().startswith("#"):
                break
            comment.insert(0, above.strip().lstrip("#").strip())
        actions = next(lines[j] for j in range(start, i) if "Action:" in lines[j])
        if "Service Authorization Reference" in " ".join(comment):
            explained.add(frozenset(re.findall(r"[a-z0-9-]+:[A-Za-z*]+", actions)))
    return explained


@pytest.mark.parametrize("stage", ["aws", "local"])
def test_every_star_resource_is_explained_in_the_template(templates, stage: str):
    explained = _explained_star_actions()
    unexplained = []
    for name, resource in templates[stage]["Resources"].items():
        for statement in _star_statements(resource.get("Properties", {}), []):
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if frozenset(actions) not in explained:
                unexplained.append(f"{name}: {actions}")
    assert not unexplained, f'scope these, or explain the "*" with the service rule: {unexplained}'


# The streamed routes: (method, path) -> (AWS stream function, local buffered function, authorizer).
STREAMED = {
    ("post", "/v1/ai-agent/chat/stream"): ("AiAgentStreamFunction", "AiAgentFunction", "OrgAuthorizer"),
    ("post", "/v1/ai-tutor/chat/stream"): ("TutorStreamFunction", "TutorFunction", "OrgAuthorizer"),
    # the classroom page's join token is checked by the app, as on the page's other routes
    ("post", "/v1/ai-tutor/classroom/chat/stream"): ("TutorStreamFunction", "TutorFunction", "NONE"),
}
# API Gateway's Lambda integration URIs: the response-streaming invocation, and the buffered one.
_STREAM_URI = re.compile(
    r"arn:\$\{AWS::Partition\}:apigateway:\$\{AWS::Region\}:lambda:path/2021-11-15/functions/"
    r"\$\{(\w+)\.Arn\}/response-streaming-invocations"
)
_BUFFERED_URI = re.compile(
    r"arn:(?:aws|\$\{AWS::Partition\}):apigateway:\$\{AWS::Region\}:lambda:path/2015-03-31/functions/"
    r"\$\{(\w+)\.Arn\}/invocations"
)


def _in_stage(node: Any, stage: str) -> Any:
    """`node` with the template's stage conditions (`Fn::If` on IsAws / IsLocal) decided for `stage`."""
    if isinstance(node, list):
        return [_in_stage(v, stage) for v in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Fn::If"} and node["Fn::If"][0] in ("IsAws", "IsLocal"):
        condition, when_true, when_false = node["Fn::If"]
        return _in_stage(when_true if (condition == "IsAws") == (stage == "aws") else when_false, stage)
    return {k: _in_stage(v, stage) for k, v in node.items()}


def _api_methods(template: dict[str, Any], stage: str) -> dict[tuple[str, str], dict[str, Any]]:
    paths = _in_stage(template["Resources"]["Api"]["Properties"]["Body"]["paths"], stage)
    return {(method, path): op for path, ops in paths.items() for method, op in ops.items()}


def _authorizer(op: dict[str, Any]) -> str:
    (security,) = op["security"]
    (name,) = security
    return name


def _invoke_permissions(template: dict[str, Any], stage: str) -> set[tuple[str, str]]:
    """(function, execute-api source ARN tail) of every API Gateway permission of the stage."""
    found = set()
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::Lambda::Permission" or resource.get("Condition") not in (
            None,
            "IsAws" if stage == "aws" else "IsLocal",
        ):
            continue
        props = _in_stage(resource["Properties"], stage)
        if props["Principal"] != "apigateway.amazonaws.com":
            continue
        function = props["FunctionName"].get("Ref") or props["FunctionName"]["Fn::GetAtt"][0]
        source = props["SourceArn"]["Fn::Sub"]
        source = source[0] if isinstance(source, list) else source
        found.add((function, source.rsplit("}", 1)[-1]))
    return found


def test_in_aws_the_streamed_routes_stream_through_the_api_with_its_authorizer(templates):
    template = templates["aws"]
    methods = _api_methods(template, "aws")
    permissions = _invoke_permissions(template, "aws")
    for (method, path), (function, _, authorizer) in STREAMED.items():
        integration = methods[(method, path)]["x-amazon-apigateway-integration"]
        assert integration["type"] == "aws_proxy" and integration["responseTransferMode"] == "STREAM", path
        assert _STREAM_URI.fullmatch(integration["uri"]["Fn::Sub"]).group(1) == function, path
        assert _authorizer(methods[(method, path)]) == authorizer, path
        properties = template["Resources"][function]["Properties"]
        assert properties["Environment"]["Variables"]["AWS_LWA_INVOKE_MODE"] == "RESPONSE_STREAM"
        # API Gateway waits no longer than the function may run (streaming allows up to 15 minutes)
        assert integration["timeoutInMillis"] == properties["Timeout"] * 1000 <= 900_000
        assert (function, f"/*/{method.upper()}{path}") in permissions, path
    # every other route keeps the buffered proxy integration
    rest = {k: op for k, op in methods.items() if k not in STREAMED and k[0] != "options"}
    assert rest and all(
        "responseTransferMode" not in op["x-amazon-apigateway-integration"] for op in rest.values()
    )


def test_on_localstack_the_streamed_routes_stay_buffered_on_the_mangum_functions(templates):
    template = templates["local"]
    methods = _api_methods(template, "local")
    permissions = _invoke_permissions(template, "local")
    for (method, path), (_, function, authorizer) in STREAMED.items():
        integration = methods[(method, path)]["x-amazon-apigateway-integration"]
        assert "responseTransferMode" not in integration and integration["type"] == "aws_proxy", path
        assert _BUFFERED_URI.fullmatch(integration["uri"]["Fn::Sub"]).group(1) == function, path
        assert template["Resources"][function]["Properties"]["Handler"].endswith(".handler.handler")
        assert _authorizer(methods[(method, path)]) == authorizer, path
        assert (function, f"/*/{method.upper()}{path}") in permissions, path


@pytest.mark.parametrize("stage", ["aws", "local"])
def test_no_function_url_remains(templates, stage: str):
    """The streamed routes used to leave through public (`AuthType: NONE`) Function URLs."""
    types = {resource["Type"] for resource in templates[stage]["Resources"].values()}
    assert "AWS::Lambda::Url" not in types


def test_the_stream_functions_serve_the_streamed_routes():
    """The app that uvicorn serves behind the Lambda Web Adapter (run.sh) answers each streamed route."""
    for function in {f for f, _, _ in STREAMED.values()}:
        properties = sam_env.load_template()["Resources"][function]["Properties"]
        assert properties["Handler"] == "run.sh"
        run = (ROOT / properties["CodeUri"] / "run.sh").read_text()
        module, _, name = re.search(r"(\S+):(\w+)\s*$", run).group(0).strip().partition(":")
        app = getattr(importlib.import_module(module), name)
        served = set(app.paths)
        for (method, path), (streaming, _, _) in STREAMED.items():
            if streaming == function:
                assert (method.upper(), path) in served, (function, path)


# How `sam local start-api --parameter-overrides Stage=<stage>` routes the API (SAM CLI's own reader).
_SAM_LOCAL_ROUTES = """
import json, sys
from samcli.lib.providers.api_provider import ApiProvider
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider

stacks, _ = SamLocalStackProvider.get_stacks("template.yaml", parameter_overrides=json.loads(sys.argv[1]))
routes = ApiProvider(stacks).routes
print(json.dumps([[method.lower(), r.path, r.function_name] for r in routes for method in r.methods]))
"""


@pytest.mark.parametrize("stage", ["aws", "local"])
def test_sam_local_start_api_routes_the_streamed_routes_by_stage(stage: str):
    routes = {(method, path): function for method, path, function in _in_sam_venv(_SAM_LOCAL_ROUTES, stage)}
    for route, (streaming, buffered, _) in STREAMED.items():
        assert routes[route] == (streaming if stage == "aws" else buffered), route


@pytest.mark.parametrize("stage", ["local", "aws"])
def test_every_route_answers_the_consoles_preflight_without_the_authorizer(templates, stage: str):
    methods = _api_methods(templates[stage], stage)
    paths = {path for _, path in methods}
    assert len(paths) > 60
    classroom = {p for p in paths if p.startswith("/v1/ai-tutor/classroom/")}  # the tutor's own preflight
    for path in paths - classroom:
        preflight = methods.get(("options", path))
        assert preflight is not None, path
        assert preflight["x-amazon-apigateway-integration"]["type"] == "mock", path
        assert not preflight.get("security"), path  # no credentials on a preflight
        headers = preflight["x-amazon-apigateway-integration"]["responses"]["default"]["responseParameters"]
        assert "Authorization" in headers["method.response.header.Access-Control-Allow-Headers"]
        assert headers["method.response.header.Access-Control-Allow-Origin"], path  # ConsoleOrigin
        allowed = headers["method.response.header.Access-Control-Allow-Methods"].strip("'").split(",")
        assert {m.upper() for m, p in methods if p == path} <= set(allowed), path
