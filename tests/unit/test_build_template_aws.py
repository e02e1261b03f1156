"""The template as AWS would take it: SAM's transform of each stage, deployed where it can be here.

- `Stage=aws`, transformed by SAM's own translator (the SAM venv's samtranslator, as `sam deploy`
  does), is created as a stack in moto's CloudFormation: every resource moto can model is created
  and the stack completes. What moto cannot deploy is listed (MOTO_CANNOT, and README "Deploying to
  AWS"); those resources are left out and references to them replaced by placeholders.
- Every IAM statement of either stage with `Resource: "*"` is one the template explains with a
  comment naming the service rule that requires it.
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

ROOT = Path(__file__).resolve().parents[2]
SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"
ARTIFACTS = "verriflo-artifacts"
PARAMETERS = {"MongoDbUri": "mongodb://db.example/verriflo", "RedisUrl": "rediss://cache.example:6379/0"}

# resource type -> why moto (5.2.5) cannot create it
MOTO_CANNOT = {
    "AWS::ApiGateway::RestApi": "moto needs a Name; SAM defines the API by its OpenAPI Body",
    "AWS::ApiGateway::Deployment": "belongs to the REST API above",
    "AWS::ApiGateway::Stage": "no moto CloudFormation model",
    "AWS::CloudFront::Distribution": "no moto CloudFormation model",
    "AWS::CloudFront::KeyGroup": "no moto CloudFormation model",
    "AWS::CloudFront::OriginAccessControl": "no moto CloudFormation model",
    "AWS::CloudFront::PublicKey": "no moto CloudFormation model",
    "AWS::CloudWatch::Alarm": "no moto CloudFormation model",
    "AWS::Lambda::EventInvokeConfig": "no moto CloudFormation model",
    "AWS::Lambda::Url": "no moto CloudFormation model",
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


def _transformed(stage: str) -> dict[str, Any]:
    assert SAM_PYTHON.exists(), ".venv-sam missing: make deps builds it"
    done = subprocess.run(
        [str(SAM_PYTHON), "-c", _TRANSFORM, json.dumps({"Stage": stage, **PARAMETERS})],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={"AWS_DEFAULT_REGION": "us-east-1", "PATH": "/usr/bin:/bin", "SAM_CLI_TELEMETRY": "0"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


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
