"""Prepare the built SAM template for LocalStack (run with the SAM CLI's venv: needs samtranslator).

1. Fail fast on a circular dependency. AWS rejects one at change-set creation ("Circular
   dependency between resources"); LocalStack instead recurses forever while describing the
   change set and `sam deploy` waits for minutes before "maximum recursion depth exceeded".
2. With --local-out, write a copy whose function code and layers point at folders on this machine
   (LocalStack's `hot-reload` bucket marker) instead of zips `sam deploy` would upload: the layers
   weigh hundreds of MB, and uploading them into LocalStack's S3 on every fresh start took
   minutes. Each folder is a hard-linked snapshot named by a fingerprint of its files, so a
   changed build gets a new path: CloudFormation sees a code change and LocalStack starts fresh
   execution environments, while unchanged code keeps its path and its warm environments.

    python scripts/template_check.py BUILD/template.yaml [Param=Value ...]
        [--local-out BUILD/template.local.yaml --snapshots DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from samcli.yamlhelper import yaml_dump, yaml_parse
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


HOT_RELOAD_BUCKET = "hot-reload"  # LocalStack's BUCKET_MARKER_LOCAL default
_PATH_PROPERTIES = ("CodeUri", "ContentUri", "DefinitionUri", "Location", "TemplateURL")
_CODE_PROPERTY = {"AWS::Serverless::Function": "CodeUri", "AWS::Serverless::LayerVersion": "ContentUri"}


def fingerprint(folder: Path) -> str:
    """Cheap content fingerprint: every file's relative path, size and mtime."""
    digest = hashlib.sha256()
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            path = Path(root) / name
            stat = path.lstat()
            digest.update(f"{path.relative_to(folder)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def snapshot(folder: Path, snapshots: Path, name: str) -> Path:
    target = snapshots / f"{name}-{fingerprint(folder)}"
    if not target.exists():
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        # hard links: instant and no extra space; `sam build` replaces files rather than editing them
        subprocess.run(["cp", "-al", str(folder), str(partial)], check=True)  # noqa: S603, S607
        partial.rename(target)
    return target


def localize(template: dict, build_dir: Path, snapshots: Path) -> dict:
    """Point every local CodeUri/ContentUri at a snapshot folder through the hot-reload marker."""
    snapshots.mkdir(parents=True, exist_ok=True)
    used = set()
    for name, resource in template.get("Resources", {}).items():
        prop = _CODE_PROPERTY.get(resource.get("Type", ""))
        properties = resource.get("Properties") or {}
        value = properties.get(prop) if prop else None
        if not isinstance(value, str) or value.startswith("s3://"):
            continue
        folder = (build_dir / value).resolve()
        if not folder.is_dir():
            continue
        target = snapshot(folder, snapshots, name)
        used.add(target.name)
        properties[prop] = {"Bucket": HOT_RELOAD_BUCKET, "Key": str(target)}
    # other local artifacts (state machine definitions, ...) stay where the build put them: the
    # written template lives elsewhere, so their paths become absolute
    for resource in template.get("Resources", {}).values():
        properties = resource.get("Properties") or {}
        for key in _PATH_PROPERTIES:
            value = properties.get(key)
            if isinstance(value, str) and "://" not in value and (build_dir / value).exists():
                properties[key] = str((build_dir / value).resolve())
    for old in snapshots.iterdir():  # snapshots no resource points at any more
        if old.name not in used:
            shutil.rmtree(old, ignore_errors=True)
    return template


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("template")
    parser.add_argument("parameters", nargs="*", help="Name=Value")
    parser.add_argument("--local-out")
    parser.add_argument("--snapshots")
    args = parser.parse_args(argv)
    with open(args.template) as fh:
        template = yaml_parse(fh.read())
    parameters = dict(arg.split("=", 1) for arg in args.parameters)
    found = cycles(template, parameters)
    for cycle in found:
        print("circular dependency: " + " -> ".join(cycle))
    if found:
        return 1
    if args.local_out:
        build_dir = Path(args.template).resolve().parent
        localized = localize(template, build_dir, Path(args.snapshots).resolve())
        Path(args.local_out).write_text(yaml_dump(localized))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
