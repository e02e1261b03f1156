"""The OpenAPI document: complete, current, and describing errors as the API returns them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from verriflo.openapi_document import DOCUMENT
from verriflo_tools.openapi import build_document, render

ROOT = Path(__file__).resolve().parents[2]


def _template_routes() -> set[tuple[str, str]]:
    class Loader(yaml.SafeLoader):
        pass

    # CloudFormation short-form tags (!Ref, !Sub, ...) are irrelevant here; read them as plain values.
    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    template = yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)  # noqa: S506 - Loader is a SafeLoader
    routes = set()
    for resource in template["Resources"].values():
        for event in (
            (resource.get("Properties") or {}).get("Events", {}).values()
            if isinstance(resource, dict)
            else []
        ):
            if event.get("Type") == "Api":
                props = event["Properties"]
                routes.add((props["Method"].lower(), props["Path"]))
    # the methods the Api declares itself (the streamed routes)
    body = template["Resources"]["Api"]["Properties"].get("DefinitionBody") or {}
    routes |= {(method, path) for path, ops in (body.get("paths") or {}).items() for method in ops}
    return routes


def test_the_committed_document_is_current():
    assert DOCUMENT.read_text() == render(build_document(ROOT / "functions")), (
        "layers/common/verriflo/openapi.json is stale: run `verriflo openapi --write`"
    )


def test_every_route_in_the_template_is_documented():
    document = build_document(ROOT / "functions")
    documented = {(method, path) for path, ops in document["paths"].items() for method in ops}
    undocumented = {r for r in _template_routes() if r not in documented and r[1] != "/v1/openapi.json"}
    assert not undocumented, f"routes missing from the OpenAPI document: {sorted(undocumented)}"


def test_errors_are_documented_as_the_envelope_and_validation_is_400():
    document = build_document(ROOT / "functions")
    for path, ops in document["paths"].items():
        for method, op in ops.items():
            assert "422" not in op["responses"], (method, path)
            assert op["responses"]["500"]["content"]["application/json"]["schema"]["$ref"].endswith(
                "ErrorEnvelope"
            )
            assert re.fullmatch(r"/v1/[a-z0-9/{}_.-]+|/api/[a-z0-9/{}_.-]+|/iframe/[a-z/]+", path), path


def test_public_routes_need_no_credentials_and_others_need_a_key_or_token():
    document = build_document(ROOT / "functions")
    assert document["paths"]["/v1/health"]["get"]["security"] == []
    assert document["paths"]["/v1/auth/login"]["post"]["security"] == []
    assert "security" not in document["paths"]["/v1/auth/whoami"]["get"]
    assert {"orgKey": []} in document["security"]
    assert document["components"]["securitySchemes"]["orgKey"]["name"] == "VF-ORG-ID"


def test_internal_routes_declare_the_dispatch_secret_and_nothing_else():
    document = build_document(ROOT / "functions")
    scheme = document["components"]["securitySchemes"]["dispatchSecret"]
    assert (scheme["type"], scheme["in"], scheme["name"]) == ("apiKey", "header", "X-Dispatch-Secret")
    internal = [
        op for path, ops in document["paths"].items() if path.startswith("/api/") for op in ops.values()
    ]
    assert len(internal) >= 3
    assert all(op["security"] == [{"dispatchSecret": []}] for op in internal)
    assert all(
        {"dispatchSecret": []} not in op.get("security", [])
        for path, ops in document["paths"].items()
        if not path.startswith("/api/")
        for op in ops.values()
    )


def _answer_schema(document: dict, path: str, method: str) -> dict:
    ref = document["paths"][path][method]["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    envelope = document["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return document["components"]["schemas"][envelope["properties"]["data"]["$ref"].rsplit("/", 1)[-1]]


def test_each_delete_answer_is_described_by_its_own_model():
    document = build_document(ROOT / "functions")
    video = _answer_schema(document, "/v1/cdn/videos/{video_id}", "delete")
    assert video["required"] == ["videoId"]
    assert _answer_schema(document, "/v1/webhooks/{endpoint_id}", "delete")["required"] == ["id"]


def test_two_functions_models_of_one_name_with_different_fields_are_an_error():
    from verriflo_tools.openapi import _check_schema_names

    def component(**properties):
        return {
            "components": {"schemas": {"Deleted": {"properties": properties, "required": list(properties)}}}
        }

    shapes: dict = {}
    _check_schema_names("webhooks", component(id={"type": "string"}), shapes)
    _check_schema_names("ai_agent", component(id={"type": "string", "title": "Id"}), shapes)  # same fields
    with pytest.raises(ValueError, match="schema 'Deleted' of cdn differs from webhooks'"):
        _check_schema_names("cdn", component(videoId={"type": "string"}), shapes)


def test_routes_with_a_body_document_415():
    document = build_document(ROOT / "functions")
    with_body = [op for ops in document["paths"].values() for op in ops.values() if "requestBody" in op]
    assert len(with_body) >= 25
    assert all(op["responses"]["415"]["content"]["application/json"] for op in with_body)
