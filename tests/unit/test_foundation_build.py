"""What `sam build` ships: every function and the common layer with their bytecode compiled.

Lambda's /opt and /var/task are read-only, so a module without a shipped .pyc is compiled again on
every cold start; these tests keep a new function from silently missing the build recipe.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _template() -> dict:
    class Loader(yaml.SafeLoader):
        pass

    Loader.add_multi_constructor("!", lambda loader, suffix, node: None)
    return yaml.load((ROOT / "template.yaml").read_text(), Loader=Loader)  # noqa: S506 - a SafeLoader


def _zip_functions() -> dict[str, dict]:
    return {
        name: resource
        for name, resource in _template()["Resources"].items()
        if resource.get("Type") == "AWS::Serverless::Function"
        and (resource.get("Properties") or {}).get("PackageType") != "Image"
    }


def test_every_function_is_built_by_the_functions_makefile():
    functions = _zip_functions()
    assert len(functions) >= 10
    missing = [
        name
        for name, resource in functions.items()
        if (resource.get("Metadata") or {}).get("BuildMethod") != "makefile"
        or (resource.get("Metadata") or {}).get("ContextPath") != "functions"
    ]
    assert not missing, f"add Metadata {{BuildMethod: makefile, ContextPath: functions}} to {missing}"


def test_the_common_layer_is_built_by_its_makefile():
    layer = _template()["Resources"]["CommonLayer"]
    assert layer["Metadata"]["BuildMethod"] == "makefile"
    assert (ROOT / "layers" / "common" / "Makefile").is_file()


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_a_function_build_ships_bytecode_that_python_uses(tmp_path: Path):
    # As SAM does it: a scratch copy of the CodeUri, then `make build-<LogicalId>` there.
    scratch, artifacts = tmp_path / "scratch", tmp_path / "artifacts"
    shutil.copytree(ROOT / "functions" / "health", scratch, ignore=shutil.ignore_patterns("__pycache__"))
    artifacts.mkdir()
    subprocess.run(
        ["make", "-f", str(ROOT / "functions" / "Makefile"), "build-HealthFunction"],
        cwd=scratch,
        env={**os.environ, "ARTIFACTS_DIR": str(artifacts), "PYTHON": sys.executable},
        check=True,
        capture_output=True,
    )
    sources = sorted((artifacts / "health").glob("*.py"))
    assert sources
    assert not (artifacts / "requirements.txt").exists()
    for source in sources:
        compiled = source.parent / "__pycache__" / f"{source.stem}.{sys.implementation.cache_tag}.pyc"
        assert compiled.is_file(), f"{compiled} missing"
        # unchecked-hash bytecode: valid whatever timestamps the zip gives the sources
        flags = int.from_bytes(compiled.read_bytes()[4:8], "little")
        assert flags == 0b01, f"{compiled} is not unchecked-hash bytecode (flags {flags})"


def test_every_gateway_response_carries_the_request_id():
    # API Gateway's own answers (authorizer 401, unknown routes, throttling, 5xx) carry the id every
    # function answer carries; the LocalStack extension renders the same mapping.
    responses = _template()["Resources"]["Api"]["Properties"]["GatewayResponses"]
    assert {"UNAUTHORIZED", "MISSING_AUTHENTICATION_TOKEN", "DEFAULT_4XX", "DEFAULT_5XX"} <= set(responses)
    for name, response in responses.items():
        assert response["ResponseParameters"]["Headers"]["X-Request-Id"] == "context.requestId", name
