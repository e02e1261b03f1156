"""`make sam-env` against a deployed stack: the env file `sam local start-api --env-vars` takes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from scripts import sam_env

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def test_the_env_file_of_the_deployed_stack(
    e2e_stack: dict[str, str], cli_env: dict[str, str], tmp_path: Path
):
    out = tmp_path / "env.local.json"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "sam_env.py"), "--stack-name", "verriflo", "-o", str(out)],
        env=cli_env,
        check=True,
        timeout=120,
    )
    env = json.loads(out.read_text())
    port = urlsplit(e2e_stack["AWS_ENDPOINT_URL"]).port
    assert env["Parameters"] == {"AWS_ENDPOINT_URL": f"http://host.docker.internal:{port}"}

    template = sam_env.load_template()
    local = {
        name
        for name, resource in template["Resources"].items()
        if resource["Type"] == "AWS::Serverless::Function" and resource.get("Condition") in (None, "IsLocal")
    }
    assert set(env) - {"Parameters"} == local
    declared = sam_env.template_variables(template)
    for function in local:
        variables = env[function]
        # every variable the template declares, as deployed (AWS_ENDPOINT_URL: absent while the
        # AwsEndpointUrl parameter is empty, so LocalStack's own stays in force)
        assert set(variables) == set(declared[function]) - {"AWS_ENDPOINT_URL"}, function
        assert not any("127.0.0.1" in value or "//localhost" in value for value in variables.values())
    media = env["CdnFunction"]["MEDIA_BUCKET"]
    assert media == e2e_stack["STACK_OUTPUT_MediaBucketName"]
    assert env["CdnFunction"]["MONGODB_URI"].startswith("mongodb://host.docker.internal:")
