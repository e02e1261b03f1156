"""`samlocal build` of template.yaml, and the local template that deploys the build without uploads."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from verriflo_tools.stack.interpreters import python313, require
from verriflo_tools.stack.processes import run_logged
from verriflo_tools.stack.state import REPO, VENV_SAM, Stack, StackError, log


def sam_env(env: dict[str, str]) -> dict[str, str]:
    """`env` with what SAM CLI needs here."""
    return env | {
        # sam build finds the function runtime's interpreter on PATH
        "PATH": f"{Path(python313()).parent}:{VENV_SAM / 'bin'}:{env.get('PATH', '')}",
        "SAM_CLI_TELEMETRY": "0",
        "SAM_CLI_POLL_DELAY": "0.5",  # CloudFormation on LocalStack takes seconds, not minutes
        "DISABLE_DEPRECATION_NOTICE": "1",
    }


def sam_build(stack: Stack, build_root: Path, env: dict[str, str]) -> Path:
    """`samlocal build` of template.yaml into build_root/build (cached), `env` from sam_env();
    returns that folder: each function and layer as it is zipped for Lambda (functions/Makefile,
    layers/*/Makefile)."""
    samlocal = require(VENV_SAM / "bin" / "samlocal", "run `make deps`")
    build_dir = build_root / "build"
    cache_dir = build_root / "cache"
    started = time.monotonic()
    run_logged(
        [
            str(samlocal),
            "build",
            "--cached",
            "--parallel",
            "--build-dir",
            str(build_dir),
            "--cache-dir",
            str(cache_dir),
            "--config-file",
            str(REPO / "samconfig.toml"),
            "--config-env",
            "localstack",
            "--template-file",
            str(REPO / "template.yaml"),
            "--base-dir",
            str(REPO),
        ],
        env,
        stack,
        "sam-build",
        # SAM keeps a dependency cache in ./.aws-sam/deps: one per stack, so parallel builds (make
        # up while make test runs) do not delete each other's folders
        cwd=build_dir.parent,
    )
    log(f"sam build: {time.monotonic() - started:.1f}s")
    return build_dir


def local_template(build_dir: Path, stack: Stack, env: dict[str, str]) -> Path:
    """The built template, checked for dependency cycles (AWS refuses them; LocalStack would
    recurse for minutes), with code and layers served from local folders instead of uploaded
    (see scripts/template_check.py)."""
    out = stack.root / "template.local.yaml"
    proc = subprocess.run(  # noqa: S603
        [
            str(VENV_SAM / "bin" / "python"),
            str(REPO / "scripts" / "template_check.py"),
            str(build_dir / "template.yaml"),
            "Stage=local",
            "--local-out",
            str(out),
            "--snapshots",
            str(stack.root / "hot"),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise StackError(
            "template.yaml cannot be deployed (CloudFormation rejects circular dependencies):\n"
            + (proc.stdout or proc.stderr).strip()
        )
    return out
