"""Fail fast on a circular dependency in the SAM template, before CloudFormation sees it.

AWS rejects such a template at change-set creation ("Circular dependency between resources");
LocalStack instead recurses forever while describing the change set and `sam deploy` waits for
minutes before failing with "maximum recursion depth exceeded". Run with the SAM CLI's venv
(it needs samtranslator): python scripts/template_check.py .aws-sam/<stack>/build/template.yaml
"""

from __future__ import annotations

import os
import re
import sys

from samcli.yamlhelper import yaml_parse
from samtranslator.translator.transform import transform

# properties SAM requires to be S3 URIs once packaged; their value is irrelevant to dependencies
_ARTIFACTS = {"CodeUri", "ContentUri", "DefinitionUri"}


class _NoManagedPolicies:
    def load(self):
        return {}


def _stub_artifacts(node):
    if isinstance(node, dict):
        return {
            k: ("s3://stub/stub" if k in _ARTIFACTS and isinstance(v, str) else _stub_artifacts(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_stub_artifacts(v) for v in node]
    return node


def _references(node, found: set[str]) -> set[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                found.add(value[0] if isinstance(value, list) else str(value).split(".")[0])
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                found.update(m.split(".")[0] for m in re.findall(r"\$\{([^}!][^}]*)\}", str(text)))
                if isinstance(value, list) and len(value) > 1:
                    _references(value[1], found)
            else:
                _references(value, found)
    elif isinstance(node, list):
        for value in node:
            _references(value, found)
    return found


def cycles(template: dict, parameters: dict[str, str]) -> list[list[str]]:
    """Every dependency cycle among the transformed template's resources."""
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    resources = transform(_stub_artifacts(template), parameters, _NoManagedPolicies())["Resources"]
    graph = {}
    for name, resource in resources.items():
        deps = _references(resource.get("Properties", {}), set())
        depends_on = resource.get("DependsOn", [])
        deps.update([depends_on] if isinstance(depends_on, str) else depends_on)
        graph[name] = sorted(d for d in deps if d in resources and d != name)
    found, state, path = [], {}, []

    def visit(node: str) -> None:
        state[node] = "open"
        path.append(node)
        for dep in graph[node]:
            if state.get(dep) == "open":
                found.append(path[path.index(dep) :] + [dep])
            elif dep not in state:
                visit(dep)
        path.pop()
        state[node] = "done"

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph) + 1000))
    for name in graph:
        if name not in state:
            visit(name)
    return found


def main(argv: list[str]) -> int:
    path = argv[0] if argv else "template.yaml"
    with open(path) as fh:
        template = yaml_parse(fh.read())
    parameters = dict(arg.split("=", 1) for arg in argv[1:])
    found = cycles(template, parameters)
    for cycle in found:
        print("circular dependency: " + " -> ".join(cycle))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
