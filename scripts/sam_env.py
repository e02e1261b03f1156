"""The environment file of `sam local start-api` / `sam local invoke` (`--env-vars`).

SAM's local runner gives each function the variables its template declares and resolves what it
can itself: parameters and pseudo parameters, but a resource's `Ref` becomes its logical id
(`MediaBucket`) and an `Fn::If` or `Fn::GetAtt` a blank. Locally those must come from a file:

- `env.example.json` (committed) names every function's every variable (the global ones under
  "Parameters", the rest under the function's logical id; tests/unit/test_build_sam_local.py keeps it
  complete), with the values of a `make up` stack seen from a container where they are fixed;
- `python scripts/sam_env.py --stack-name verriflo -o env.local.json` (`make sam-env`) writes the file
  from a deployed stack: each function's variables exactly as deployed, addresses of this host
  rewritten to the host seen from a container (`host.docker.internal`), and AWS_ENDPOINT_URL
  pointing at the same LocalStack. AWS endpoint and credentials come from the environment, as for
  boto3 itself.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
LOOPBACK = re.compile(r"(?<=//)(127\.0\.0\.1|localhost)(?=[:/]|$)")


def load_template(path: Path = REPO / "template.yaml") -> dict[str, Any]:
    """The template with its short-form intrinsics as the long form (`!Ref X` -> {"Ref": "X"})."""
    import yaml

    class Loader(yaml.SafeLoader):
        pass

    def intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
        key = suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}"
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if suffix == "GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {key: value}

    Loader.add_multi_constructor("!", intrinsic)
    return yaml.load(path.read_text(), Loader=Loader)  # noqa: S506 - a SafeLoader


def template_variables(template: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each function's environment variables as the template declares them: logical id -> name -> raw
    value (Globals first, the function's own over them), as SAM merges them."""
    globals_ = ((template.get("Globals") or {}).get("Function") or {}).get("Environment") or {}
    shared = dict(globals_.get("Variables") or {})
    found = {}
    for name, resource in (template.get("Resources") or {}).items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        own = ((resource.get("Properties") or {}).get("Environment") or {}).get("Variables") or {}
        found[name] = shared | own
    return found


def for_container(value: str, docker_host: str) -> str:
    """An address of this host as a container sees it."""
    return LOOPBACK.sub(docker_host, value)


def from_stack(stack_name: str, docker_host: str, endpoint: str | None) -> dict[str, dict[str, str]]:
    """The env file for a deployed stack: every function's variables as deployed."""
    import boto3

    cloudformation, lambda_ = boto3.client("cloudformation"), boto3.client("lambda")
    env: dict[str, dict[str, str]] = {"Parameters": {}}
    if endpoint:
        env["Parameters"]["AWS_ENDPOINT_URL"] = for_container(endpoint, docker_host)
    for page in cloudformation.get_paginator("list_stack_resources").paginate(StackName=stack_name):
        for resource in page["StackResourceSummaries"]:
            if resource["ResourceType"] != "AWS::Lambda::Function":
                continue
            config = lambda_.get_function_configuration(FunctionName=resource["PhysicalResourceId"])
            variables = (config.get("Environment") or {}).get("Variables") or {}
            env[resource["LogicalResourceId"]] = {
                name: for_container(value, docker_host) for name, value in sorted(variables.items())
            }
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack-name", default="verriflo")
    parser.add_argument("--docker-host", default="host.docker.internal")
    parser.add_argument("-o", "--output", type=Path, default=REPO / "env.local.json")
    args = parser.parse_args(argv)
    env = from_stack(args.stack_name, args.docker_host, os.environ.get("AWS_ENDPOINT_URL"))
    args.output.write_text(json.dumps(env, indent=2) + "\n")
    print(f"wrote {args.output} ({len(env) - 1} functions)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
