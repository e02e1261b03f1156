"""The OpenAPI document: complete, current, and describing errors as the API returns them."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from verriflo.openapi import DOCUMENT, build_document, render

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
