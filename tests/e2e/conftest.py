"""E2E fixtures: real stacks on LocalStack (on the host, no Docker), brought up by the same script
as `make up` (scripts/stack.py) but isolated from it: their own state folders under `.local/` and
their own free ports, so `make test` can run while a developer's `make up` stack is running.

* `e2e_stack`: MongoDB-wire server + Redis + LocalStack, template.yaml deployed, demo org seeded.
* `bare_localstack`: LocalStack alone, for the executor's and the extension's own tests, which
  create their functions and APIs themselves.

Both are torn down at the end of the session, also when a test or the start-up failed. Stack names
carry this session's pid (`e2e-<pid>`), so two test sessions never stop each other's stacks; the
leftovers of a session that was killed are swept at the next start. Sessions share one SAM build
folder (`.aws-sam/e2e`), so only the first build of a change is slow.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import boto3
import httpx
import pytest
from proc_support import stack_cli

REPO = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
UP_TIMEOUT_S = 900  # first run builds everything; normally ~30 s


def _stack(*args: str, timeout: float = UP_TIMEOUT_S) -> subprocess.CompletedProcess:
    return stack_cli(*args, timeout=timeout)


SESSION = os.getpid()


def _fresh(name: str) -> None:
    """Sweep stacks of dead sessions (their pid is gone), then start from empty state."""
    for folder in (REPO / ".local").glob("e2e*-*"):
        owner = folder.name.rsplit("-", 1)[-1]
        if owner.isdigit() and int(owner) != SESSION and not Path(f"/proc/{owner}").exists():
            _stack("down", "--stack", folder.name, timeout=60)
            shutil.rmtree(folder, ignore_errors=True)
    _stack("down", "--stack", name, timeout=60)
    shutil.rmtree(REPO / ".local" / name, ignore_errors=True)


def _fail_with_logs(name: str, proc: subprocess.CompletedProcess) -> None:
    pytest.fail(
        f"stack {name!r} did not come up (exit {proc.returncode}); logs in .local/{name}/logs\n"
        + proc.stderr[-4000:],
        pytrace=False,
    )


@pytest.fixture(scope="session")
def e2e_stack() -> Iterator[dict[str, str]]:
    """The deployed stack's settings (the stack's env file as a dict)."""
    name = os.environ.get("VERRIFLO_E2E_STACK") or f"e2e-{SESSION}"
    _fresh(name)
    try:
        proc = _stack("up", "--stack", name, "--build-key", "e2e", "--json")
        if proc.returncode != 0:
            _fail_with_logs(name, proc)
        yield json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        _stack("down", "--stack", name, timeout=120)


@pytest.fixture(scope="session")
def api_url(e2e_stack: dict[str, str]) -> str:
    """Offline base URL of the REST API stage, API.md's paths go after it as written:
    http://127.0.0.1:<port>/_aws/execute-api/<id>/local."""
    return e2e_stack["API_URL"]


@pytest.fixture(scope="session")
def demo_key(e2e_stack: dict[str, str]) -> str:
    """The seeded demo org's API key (never printed)."""
    return e2e_stack["DEMO_API_KEY"]


@pytest.fixture(scope="session")
def demo_org_id(e2e_stack: dict[str, str]) -> str:
    return e2e_stack["DEMO_ORG_ID"]


def local_client(endpoint: str, service: str):
    """A boto3 client of `service` on a LocalStack at `endpoint`."""
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="test",
        aws_secret_access_key="test",  # noqa: S106 - LocalStack's fixed test credentials
    )


@pytest.fixture(scope="session")
def stack_aws(e2e_stack: dict[str, str]):
    """boto3 clients for the deployed stack's LocalStack: stack_aws('stepfunctions'), ..."""
    return partial(local_client, e2e_stack["AWS_ENDPOINT_URL"])


@pytest.fixture(scope="session")
def dispatch_secret(e2e_stack: dict[str, str], stack_aws) -> str:
    """The deployed stack's X-Dispatch-Secret (for the internal /api/* routes; never printed)."""
    name = e2e_stack["STACK_OUTPUT_DispatchSecretName"]
    return stack_aws("secretsmanager").get_secret_value(SecretId=name)["SecretString"]


@pytest.fixture(scope="session")
def mongodb_uri(e2e_stack: dict[str, str]) -> str:
    return e2e_stack["MONGODB_URI"]


@pytest.fixture(scope="session")
def redis_url(e2e_stack: dict[str, str]) -> str:
    return e2e_stack["REDIS_URL"]


@pytest.fixture(scope="session")
def cli_env(e2e_stack: dict[str, str]) -> dict[str, str]:
    """Environment for the operators' CLI against the e2e stack's stores."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MONGODB_", "REDIS_"))}
    env.update(
        {
            "MONGODB_URI": e2e_stack["MONGODB_URI"],
            "REDIS_URL": e2e_stack["REDIS_URL"],
            "AWS_ENDPOINT_URL": e2e_stack["AWS_ENDPOINT_URL"],
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
        }
    )
    return env


@pytest.fixture(scope="session")
def verriflo_cli(cli_env: dict[str, str]):
    """Run `verriflo --json ...` against the e2e stack; returns the parsed JSON."""
    from verriflo_tools.stack.seeding import cli_command

    argv, env = cli_command(cli_env)

    def run(*args: str) -> dict:
        proc = subprocess.run(  # noqa: S603
            [*argv, "--json", *args],
            env=env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, f"verriflo {args[0]} failed: {proc.stderr[-2000:]}"
        return json.loads(proc.stdout.strip().splitlines()[-1])

    return run


@pytest.fixture(scope="session")
def livekit_admin(e2e_stack: dict[str, str], stack_aws):
    """Call the LiveKit stand-in's admin routes (`method`, `path`, JSON body, `token`: a join token,
    or by default a server token with `grants`, signed by the stack's LiveKit secret); the JSON answer."""
    from livekit.api import AccessToken, VideoGrants
    from livekit_support import stand_in_call

    sm = stack_aws("secretsmanager")
    secret = json.loads(
        sm.get_secret_value(SecretId=e2e_stack["STACK_OUTPUT_LiveKitSecretName"])["SecretString"]
    )

    def call(
        method: str, path: str, body: dict | None = None, *, token: str | None = None, grants=None
    ) -> dict:
        if token is None:
            signer = AccessToken(secret["apiKey"], secret["apiSecret"])
            token = signer.with_grants(grants or VideoGrants()).to_jwt()
        return stand_in_call(e2e_stack["LIVEKIT_URL"], method, path, body, token)

    return call


@pytest.fixture
def receivers():
    """Webhook receivers on loopback (the local stage allows them as webhook targets)."""
    from webhook_receivers import start_receivers

    r = start_receivers()
    yield r
    r.server.shutdown()
    r.server.server_close()


@pytest.fixture
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=60, trust_env=False) as client:
        yield client


# ---- LocalStack alone -------------------------------------------------------------------------
@pytest.fixture(scope="session")
def bare_localstack() -> Iterator[str]:
    """A LocalStack of its own (stack `e2e-lambda-<pid>`), with our executor and extension; its URL."""
    name = f"e2e-lambda-{SESSION}"
    _fresh(name)
    try:
        proc = _stack("localstack-start", "--stack", name, timeout=300)
        if proc.returncode != 0:
            _fail_with_logs(name, proc)
        ports = json.loads((REPO / ".local" / name / "ports.json").read_text())
        yield f"http://127.0.0.1:{ports['localstack']}"
    finally:
        _stack("localstack-stop", "--stack", name, timeout=60)


@pytest.fixture(scope="session")
def aws(bare_localstack: str):
    """boto3 clients for the bare LocalStack: aws('lambda'), aws('logs'), ..."""
    return partial(local_client, bare_localstack)
