"""Deploying a built template to a stack's LocalStack with `samlocal deploy`, and reading its outputs."""

from __future__ import annotations

import fcntl
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

from verriflo_tools.stack.build import local_template, sam_build, sam_env
from verriflo_tools.stack.interpreters import require
from verriflo_tools.stack.localstack import aws_env, start_localstack
from verriflo_tools.stack.processes import run_logged, stop_pid
from verriflo_tools.stack.servers import mongodb_uri, redis_url
from verriflo_tools.stack.standin import livekit_url
from verriflo_tools.stack.state import REPO, STACK_NAME, VENV_SAM, Stack, StackError, log


def deploy(stack: Stack, ports: dict[str, int], build_key: str | None = None) -> dict[str, str]:
    """samlocal build + deploy of template.yaml; returns the stack outputs.

    Stacks with the same `build_key` share one build folder (and its cache), one build at a time
    (a file lock); each stack deploys from its own snapshot of it (.local/<stack>/hot)."""
    samlocal = require(VENV_SAM / "bin" / "samlocal", "run `make deps`")
    env = sam_env(aws_env(stack, ports))
    build_root = REPO / ".aws-sam" / (build_key or stack.name)
    build_root.mkdir(parents=True, exist_ok=True)
    lock = open(build_root / ".lock", "w")  # noqa: SIM115 - held until the snapshot exists
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        build_dir = sam_build(stack, build_root, env)
        template = local_template(build_dir, stack, env)
    finally:
        lock.close()  # releases the lock
    bucket = "verriflo-sam-artifacts"
    _s3_bucket(env, bucket)
    wanted = {
        "Stage": "local",
        # Lambda processes reach the stack's own servers on loopback
        "MongoDbUri": mongodb_uri(ports),
        "RedisUrl": redis_url(ports),
        # this stack's LocalStack port (the template's default assumes 4566)
        "LocalS3Url": f"http://127.0.0.1:{ports['localstack']}",
        # the LiveKit stand-in of this stack
        "LiveKitUrl": livekit_url(ports),
    }
    declared = template_parameters()
    overrides = {k: v for k, v in wanted.items() if k in declared}
    started = time.monotonic()
    existed = _stack_status(env) is not None
    try:
        _sam_deploy(samlocal, template, bucket, overrides, env, stack)
    except StackError as exc:
        status = _stack_status(env)
        if not existed or status is None:
            raise  # a first deploy failed: the template itself is at fault
        # LocalStack's CloudFormation cannot apply some updates in place (it replaces the API
        # stage when the routes change and the replacement collides with the old stage; large
        # change sets can fail to describe), and a failed update leaves resources behind. Its
        # state is disposable (the data lives in MongoDB), so: fresh LocalStack, fresh deploy.
        log(f"in-place update failed (stack {status}); restarting LocalStack and deploying afresh")
        log(str(exc).splitlines()[0])
        stop_pid(stack, "localstack", "localstack.runtime.main")
        shutil.rmtree(stack.root / "localstack", ignore_errors=True)
        start_localstack(stack, ports)
        stack.save_ports(ports)
        _s3_bucket(env, bucket)
        _sam_deploy(samlocal, template, bucket, overrides, env, stack)
    log(f"sam deploy: {time.monotonic() - started:.1f}s")
    return stack_outputs(env)


def _stack_status(env: dict[str, str]) -> str | None:
    try:
        out = _aws_call(env, "cloudformation", "describe_stacks", {"StackName": STACK_NAME})
    except StackError:
        return None
    return out["Stacks"][0].get("StackStatus")


def _sam_deploy(
    samlocal: Path, template: Path, bucket: str, overrides: dict[str, str], env: dict[str, str], stack: Stack
) -> None:
    run_logged(
        [
            str(samlocal),
            "deploy",
            "--config-file",
            str(REPO / "samconfig.toml"),
            "--config-env",
            "localstack",
            "--template-file",
            str(template),
            "--s3-bucket",
            bucket,
            "--no-confirm-changeset",
            "--no-fail-on-empty-changeset",
            "--parameter-overrides",
            *[f"{k}={v}" for k, v in overrides.items()],
        ],
        env,
        stack,
        "sam-deploy",
    )


def template_parameters() -> set[str]:
    """Names under `Parameters:` in template.yaml (only those may be overridden)."""
    names, inside = set(), False
    for line in (REPO / "template.yaml").read_text().splitlines():
        if re.match(r"^\S", line):
            inside = line.startswith("Parameters:")
            continue
        if inside and (m := re.match(r"^  ([A-Za-z0-9]+):", line)):
            names.add(m.group(1))
    return names


def _aws_call(env: dict[str, str], service: str, action: str, params: dict) -> dict:
    """A boto3 call run with the SAM venv's Python (this script has no boto3 of its own)."""
    code = (
        "import boto3, json, sys\n"
        "service, action, params = json.loads(sys.argv[1])\n"
        "client = boto3.client(service)\n"
        "out = getattr(client, action)(**params)\n"
        "out.pop('ResponseMetadata', None)\n"
        "print(json.dumps(out, default=str))\n"
    )
    proc = subprocess.run(  # noqa: S603
        [str(VENV_SAM / "bin" / "python"), "-c", code, json.dumps([service, action, params])],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise StackError(f"{service}.{action} failed: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout)


def _s3_bucket(env: dict[str, str], bucket: str) -> None:
    # samlocal uploads code artifacts to S3 before CloudFormation runs; idempotent
    try:
        _aws_call(env, "s3", "head_bucket", {"Bucket": bucket})
    except StackError:
        _aws_call(env, "s3", "create_bucket", {"Bucket": bucket})


def stack_outputs(env: dict[str, str]) -> dict[str, str]:
    out = _aws_call(env, "cloudformation", "describe_stacks", {"StackName": STACK_NAME})
    outputs = out["Stacks"][0].get("Outputs", [])
    return {o["OutputKey"]: o["OutputValue"] for o in outputs}


def offline_api_url(outputs: dict[str, str], ports: dict[str, int]) -> str:
    """The API's base URL as LocalStack serves it on loopback: /_aws/execute-api/<id>/<stage>.

    API.md's paths (/v1/...) go after it as written. The stage is the environment (ApiStageName).
    """
    api_id, stage = outputs.get("ApiId"), outputs.get("ApiStageName")
    if not api_id or not stage:
        raise StackError(f"stack outputs have no ApiId/ApiStageName: {sorted(outputs)}")
    return f"http://127.0.0.1:{ports['localstack']}/_aws/execute-api/{api_id}/{stage}"
