"""LocalStack reuses one boto3 client and one STS session per assumed role
(localstack/verriflo_localstack/clients.py): without it every Step Functions task state built a new
client and moto kept a new STS session, LocalStack's growth under the soak beyond its S3 data.

Runs tests/localstack_clients_probe.py with LocalStack's own Python, as LocalStack runs the patch.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LOCALSTACK_PYTHON = ROOT / ".venv-localstack" / "bin" / "python"
PROBE = ROOT / "tests" / "localstack_clients_probe.py"
CALLS = 20  # the probe's calls for one role, then one for another role


def _probe(*flags: str) -> dict:
    done = subprocess.run(
        [str(LOCALSTACK_PYTHON), str(PROBE), *flags], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_localstack_alone_builds_a_client_and_an_sts_session_per_call() -> None:
    # the behaviour the patch exists for: if LocalStack ever fixes it, this says the patch can go
    seen = _probe()
    assert seen["assume_role_calls"] == CALLS + 1
    assert seen["distinct_clients"] == CALLS


def test_with_the_patch_one_role_is_one_sts_session_and_one_client() -> None:
    seen = _probe("--patched")
    assert seen["assume_role_calls"] == 2  # one per role
    assert seen["distinct_clients"] == 1
    assert not seen["other_role_shares"]
    assert seen["other_role_key"] != seen["first_key"]  # another role keeps its own credentials


def test_credentials_near_their_expiry_are_renewed_not_reused() -> None:
    seen = _probe("--patched", "--expiring")  # each issued set expires in 2 minutes (< 5 minutes)
    assert seen["assume_role_calls"] == CALLS + 1
    assert seen["distinct_clients"] == CALLS
