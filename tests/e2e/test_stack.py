"""The deployed stack over HTTP, as a client sees it: LocalStack's REST API Gateway in front of the
functions (run by the project's executor), the authorizer, gateway responses, the real stores."""

from __future__ import annotations

import uuid

import httpx
import pytest

pytestmark = pytest.mark.e2e

KEY_HEADER = "VF-ORG-ID"


def assert_error_envelope(response: httpx.Response, status: int, error: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["success"] is False
    assert isinstance(body["message"], str) and body["message"]
    assert body["error"].isupper() and " " not in body["error"]
    if error:
        assert body["error"] == error
    return body


def test_health_answers_200_with_success_envelope(http: httpx.Client, api_url: str) -> None:
    response = http.get(f"{api_url}/v1/health")

    assert response.status_code == 200
    body = response.json()
    assert body["success"] is True
    assert body["data"]["status"] == "ok"


def test_readiness_reports_every_dependency_up(http: httpx.Client, api_url: str, demo_key: str) -> None:
    response = http.get(f"{api_url}/v1/health/ready", headers={KEY_HEADER: demo_key})

    assert response.status_code == 200, response.text
    data = response.json()["data"]
    checks = {check["name"]: check for check in data["checks"]}
    assert set(checks) == {
        "mongodb",
        "redis",
        "s3",
        "eventbridge",
        "livekit",
        "secretsmanager",
        "sqs",
        "stepfunctions",
    }
    for name, check in checks.items():
        assert check["status"] == "up", (name, check)
    assert data["ready"] is True


def test_base_url_plus_the_documented_path_is_the_whole_url(
    http: httpx.Client, api_url: str, demo_key: str, e2e_stack: dict[str, str]
) -> None:
    # The stage is the environment, not a version: `<base>/v1/...` as API.md writes it, no /v1/v1.
    assert api_url == e2e_stack["API_URL"] and api_url.endswith("/local")
    assert http.get(f"{api_url}/v1/v1/auth/whoami", headers={KEY_HEADER: demo_key}).status_code != 200

    response = http.get(f"{api_url}/v1/auth/whoami", headers={KEY_HEADER: demo_key})

    assert response.status_code == 200, response.text
    assert response.json()["data"]["orgId"] == e2e_stack["DEMO_ORG_ID"]


def test_request_without_key_is_refused_with_401_envelope(http: httpx.Client, api_url: str) -> None:
    response = http.get(f"{api_url}/v1/auth/whoami")

    assert_error_envelope(response, 401, "UNAUTHORIZED")


def test_request_with_unknown_key_is_refused_with_401_envelope(http: httpx.Client, api_url: str) -> None:
    unknown = "vfk_" + uuid.uuid4().hex

    response = http.get(f"{api_url}/v1/auth/whoami", headers={KEY_HEADER: unknown})

    assert_error_envelope(response, 401, "UNAUTHORIZED")


def test_request_with_demo_key_reaches_the_function_as_its_org(
    http: httpx.Client, api_url: str, demo_key: str, demo_org_id: str
) -> None:
    response = http.get(f"{api_url}/v1/auth/whoami", headers={KEY_HEADER: demo_key})

    assert response.status_code == 200, response.text
    assert response.json()["data"]["orgId"] == demo_org_id


def test_unknown_route_answers_404_envelope(http: httpx.Client, api_url: str, demo_key: str) -> None:
    response = http.get(f"{api_url}/v1/no-such-route", headers={KEY_HEADER: demo_key})

    assert_error_envelope(response, 404, "NOT_FOUND")


def test_openapi_document_is_served(http: httpx.Client, api_url: str) -> None:
    response = http.get(f"{api_url}/v1/openapi.json")

    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.")
    assert "/v1/health" in document["paths"]


def test_org_over_its_budget_gets_429_with_rate_limit_headers(
    http: httpx.Client, api_url: str, verriflo_cli
) -> None:
    # a fresh org, so no warm function has its (cached) limits yet
    org = verriflo_cli("org", "create", f"e2e-ratelimit-{uuid.uuid4().hex[:8]}")
    verriflo_cli("org", "set-rate-limit", org["orgId"], "default", "3", "--window", "60")
    headers = {KEY_HEADER: org["apiKey"]}

    statuses = []
    last = None
    for _ in range(6):  # budget 3: the 4th request in the window is over it
        last = http.get(f"{api_url}/v1/auth/whoami", headers=headers)
        statuses.append(last.status_code)
        if last.status_code == 429:
            break

    assert statuses[:3] == [200, 200, 200], statuses
    assert_error_envelope(last, 429)
    assert int(last.headers["Retry-After"]) > 0
    assert "RateLimit" in last.headers
    assert "RateLimit-Policy" in last.headers
    assert last.headers["X-RateLimit-Limit"] == "3"
    assert last.headers["X-RateLimit-Remaining"] == "0"
    assert int(last.headers["X-RateLimit-Reset"]) > 0


def test_a_revoked_key_is_refused_at_once_by_every_warm_function(
    http: httpx.Client, api_url: str, e2e_stack: dict[str, str]
) -> None:
    login = {"email": e2e_stack["DEMO_OWNER_EMAIL"], "password": e2e_stack["DEMO_OWNER_PASSWORD"]}
    token = http.post(f"{api_url}/v1/auth/login", json=login).json()["data"]["token"]
    owner = {"Authorization": f"Bearer {token}"}
    issued = http.post(f"{api_url}/v1/keys", headers=owner, json={"name": "e2e-revoke"}).json()["data"]
    headers = {KEY_HEADER: issued["secret"]}
    # The authorizer and two functions (separate processes) now hold the key in their caches.
    assert http.get(f"{api_url}/v1/auth/whoami", headers=headers).status_code == 200
    assert http.get(f"{api_url}/v1/billing/balance", headers=headers).status_code == 200

    revoked = http.delete(f"{api_url}/v1/keys/{issued['key']['id']}", headers=owner)
    assert revoked.status_code == 200, revoked.text

    assert_error_envelope(http.get(f"{api_url}/v1/billing/balance", headers=headers), 401, "UNAUTHORIZED")
    assert_error_envelope(http.get(f"{api_url}/v1/auth/whoami", headers=headers), 401, "UNAUTHORIZED")


def test_readiness_with_a_dependency_down_is_the_503_error_envelope(
    http: httpx.Client, api_url: str, stack_aws
) -> None:
    # Only the health function is pointed at a queue that does not exist; restored afterwards.
    lam = stack_aws("lambda")
    [name] = [
        f["FunctionName"]
        for page in lam.get_paginator("list_functions").paginate()
        for f in page["Functions"]
        if f.get("Environment", {}).get("Variables", {}).get("POWERTOOLS_SERVICE_NAME") == "health"
    ]
    variables = lam.get_function_configuration(FunctionName=name)["Environment"]["Variables"]
    missing = variables["HEALTH_QUEUE_URLS"].rsplit("/", 1)[0] + "/verriflo-no-such-queue"
    lam.update_function_configuration(
        FunctionName=name, Environment={"Variables": variables | {"HEALTH_QUEUE_URLS": missing}}
    )
    try:
        lam.get_waiter("function_updated_v2").wait(FunctionName=name)
        response = http.get(f"{api_url}/v1/health/ready")
    finally:
        lam.update_function_configuration(FunctionName=name, Environment={"Variables": variables})
        lam.get_waiter("function_updated_v2").wait(FunctionName=name)

    body = assert_error_envelope(response, 503, "SERVICE_UNAVAILABLE")
    assert "sqs" in body["message"] and int(response.headers["Retry-After"]) > 0
    checks = {c["name"]: c["status"] for c in body["details"]["checks"]}
    assert checks["sqs"] == "down" and all(s == "up" for n, s in checks.items() if n != "sqs")
    assert http.get(f"{api_url}/v1/health/ready").status_code == 200  # restored
