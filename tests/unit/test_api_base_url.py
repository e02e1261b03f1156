"""The API's base URL: the stage is the environment (routes carry /v1 themselves), and an optional
custom domain maps the stage at its root. Checked on template.yaml as each parameter set resolves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
REQUIRED = {"MongoDbUri": "mongodb://db.example/verriflo", "RedisUrl": "rediss://cache.example:6379/0"}
DOMAIN = {
    "ApiDomainName": "api.example.com",
    "ApiDomainCertificateArn": "arn:aws:acm:us-east-1:123456789012:certificate/0a1b2c3d",
}


def _template() -> dict[str, Any]:
    from cfnlint.decode import decode_str

    template, errors = decode_str((ROOT / "template.yaml").read_text())
    assert not errors, errors
    return template


def _parameters(template: dict[str, Any], given: dict[str, str]) -> dict[str, str]:
    defaults = {k: str(v.get("Default", "")) for k, v in template["Parameters"].items()}
    return defaults | given


def _value(node: Any, template: dict[str, Any], params: dict[str, str]) -> Any:
    """The value of a condition or output: Ref of parameters, Equals, Not, And, Condition, If, Sub
    (parameters and pseudo parameters only; other references come back as `<Name>`)."""
    if isinstance(node, list):
        return [_value(v, template, params) for v in node]
    if not isinstance(node, dict) or len(node) != 1:
        return node
    ((fn, arg),) = node.items()
    if fn == "Ref":
        return params.get(arg, f"<{arg}>")
    if fn == "Condition":
        return _value(template["Conditions"][arg], template, params)
    if fn == "Fn::Equals":
        left, right = _value(arg, template, params)
        return left == right
    if fn == "Fn::Not":
        return not _value(arg[0], template, params)
    if fn == "Fn::And":
        return all(_value(arg, template, params))
    if fn == "Fn::If":
        name, yes, no = arg
        return _value(yes if _value({"Condition": name}, template, params) else no, template, params)
    if fn == "Fn::Sub":
        import re

        return re.sub(r"\$\{([^}]+)\}", lambda m: str(params.get(m.group(1), f"<{m.group(1)}>")), arg)
    return node


def _resolved(given: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """The resources and outputs that exist for these parameters, and the parameters."""
    template = _template()
    params = _parameters(template, REQUIRED | given) | {
        "AWS::Region": "us-east-1",
        "AWS::URLSuffix": "amazonaws.com",
    }

    def exists(item: dict[str, Any]) -> bool:
        return "Condition" not in item or _value({"Condition": item["Condition"]}, template, params)

    resources = {k: v for k, v in template["Resources"].items() if exists(v)}
    outputs = {k: _value(v["Value"], template, params) for k, v in template["Outputs"].items() if exists(v)}
    return resources, outputs, params


@pytest.mark.parametrize("stage", ["aws", "local"])
def test_the_stage_is_the_environment_so_the_documented_paths_follow_the_base_url(stage):
    resources, outputs, _ = _resolved({"Stage": stage})
    assert resources["Api"]["Properties"]["StageName"] == {"Ref": "Stage"}
    assert outputs["ApiStageName"] == stage
    assert outputs["ApiUrl"] == f"https://<Api>.execute-api.us-east-1.amazonaws.com/{stage}"
    paths = {
        event["Properties"]["Path"]
        for r in resources.values()
        for event in (r.get("Properties", {}).get("Events") or {}).values()
        if event.get("Type") == "Api"
    }
    # public routes carry the version, internal ones /api: the stage adds neither (no /v1/v1)
    assert paths and all(p.startswith(("/v1/", "/api/")) for p in paths) and stage not in ("v1", "api")


@pytest.mark.parametrize("stage", ["aws", "local"])
def test_without_a_domain_no_domain_resources_exist(stage):
    resources, outputs, _ = _resolved({"Stage": stage})
    kinds = {r["Type"] for r in resources.values()}
    assert not kinds & {"AWS::ApiGateway::DomainName", "AWS::ApiGateway::BasePathMapping"}
    assert "ApiDomainTarget" not in outputs
    assert "Domain" not in resources["Api"]["Properties"]


def test_a_domain_maps_the_stage_at_its_root():
    resources, outputs, _ = _resolved({"Stage": "aws"} | DOMAIN)
    [domain] = [r for r in resources.values() if r["Type"] == "AWS::ApiGateway::DomainName"]
    [mapping] = [r for r in resources.values() if r["Type"] == "AWS::ApiGateway::BasePathMapping"]
    names = {id(r): n for n, r in resources.items()}
    assert domain["Properties"]["DomainName"] == {"Ref": "ApiDomainName"}
    assert domain["Properties"]["RegionalCertificateArn"] == {"Ref": "ApiDomainCertificateArn"}
    assert domain["Properties"]["EndpointConfiguration"] == {"Types": ["REGIONAL"]}
    assert mapping["Properties"]["DomainName"] == {"Ref": names[id(domain)]}
    assert mapping["Properties"]["RestApiId"] == {"Ref": "Api"}
    assert mapping["Properties"]["Stage"] == {"Ref": "Api.Stage"}  # SAM: the stage it creates
    assert "BasePath" not in mapping["Properties"]  # the root: https://api.example.com/v1/...
    assert outputs["ApiUrl"] == "https://api.example.com"
    assert outputs["ApiDomainTarget"] == {"Fn::GetAtt": [names[id(domain)], "RegionalDomainName"]}


@pytest.mark.parametrize("given", [{"Stage": "aws"}, {"Stage": "local"}, {"Stage": "aws"} | DOMAIN])
def test_cfn_lint_is_clean_for_each_parameter_set(given):
    from cfnlint.api import ManualArgs, lint

    args = ManualArgs(parameters=[REQUIRED | given], regions=["us-east-1"])
    matches = lint((ROOT / "template.yaml").read_text(), config=args)
    assert not matches, [str(m) for m in matches]
