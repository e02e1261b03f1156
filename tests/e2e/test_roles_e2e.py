"""Dashboard roles on the deployed stack: the authorizer passes the user's role on through API Gateway
and the functions refuse what the role may not do (the in-process matrix covers every route)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.e2e

PASSWORD = "a viewer's long password"


@pytest.fixture(scope="module")
def viewer_token(api_url: str, demo_org_id: str, cli_env: dict[str, str]) -> str:
    email = f"viewer-{uuid.uuid4().hex[:8]}@roles.example"
    proc = subprocess.run(  # noqa: S603 - the project's own CLI
        [str(Path(sys.executable).with_name("verriflo")), "user", "create", demo_org_id, email]
        + ["--role", "viewer", "--password-stdin"],
        input=PASSWORD + "\n",
        env=cli_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    with httpx.Client(timeout=60, trust_env=False) as http:
        login = http.post(f"{api_url}/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    return login.json()["data"]["token"]


def test_a_viewer_reads_but_cannot_change_or_spend(
    http: httpx.Client, api_url: str, viewer_token: str
) -> None:
    bearer = {"Authorization": f"Bearer {viewer_token}"}

    whoami = http.get(f"{api_url}/v1/auth/whoami", headers=bearer)
    assert whoami.status_code == 200, whoami.text
    assert whoami.json()["data"]["role"] == "viewer"
    assert http.get(f"{api_url}/v1/billing/balance", headers=bearer).status_code == 200

    video = {"title": "Cells", "sizeBytes": 1000, "contentType": "video/mp4"}
    for method, path, body in (
        ("POST", "/v1/cdn/videos", video),
        ("DELETE", "/v1/room/some-room", None),
        ("POST", "/v1/keys", {"name": "mine"}),
    ):
        response = http.request(method, f"{api_url}{path}", headers=bearer, json=body)
        assert response.status_code == 403, (path, response.text)
        assert response.json()["error"] == "FORBIDDEN"


def test_the_org_key_keeps_product_rights_but_cannot_mint_keys(
    http: httpx.Client, api_url: str, demo_key: str
) -> None:
    key = {"VF-ORG-ID": demo_key}

    assert http.get(f"{api_url}/v1/cdn/videos", headers=key).status_code == 200
    minted = http.post(f"{api_url}/v1/keys", headers=key, json={"name": "from a key"})
    assert minted.status_code == 403 and minted.json()["error"] == "FORBIDDEN"
