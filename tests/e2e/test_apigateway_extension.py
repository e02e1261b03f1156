"""The project's LocalStack extension for REST APIs (localstack/verriflo_localstack/apigateway.py):
Lambda authorizers run with AWS's semantics and GatewayResponses are rendered, on an API of its
own imported from an OpenAPI document (the form SAM gives CloudFormation)."""

from __future__ import annotations

import io
import json
import textwrap
import uuid
import zipfile

import httpx
import pytest

pytestmark = pytest.mark.e2e

ROLE = "arn:aws:iam::000000000000:role/apigw-test"

AUTHORIZER = """
import json

def handler(event, context):
    key = (event.get("headers") or {}).get("X-Key") or (event.get("headers") or {}).get("x-key")
    if key == "broken":
        raise RuntimeError("authorizer bug")
    if key not in ("good", "deny"):
        raise Exception("Unauthorized")
    effect = "Allow" if key == "good" else "Deny"
    return {
        "principalId": "org-123",
        "policyDocument": {"Version": "2012-10-17", "Statement": [
            {"Action": "execute-api:Invoke", "Effect": effect, "Resource": event["methodArn"]}]},
        "context": {"orgId": "org-123", "credits": 42, "admin": False},
    }
"""

ECHO = """
import json

def handler(event, context):
    return {"statusCode": 200, "headers": {"Content-Type": "application/json"},
            "body": json.dumps({"authorizer": event["requestContext"].get("authorizer"),
                                "proto": event["headers"].get("X-Forwarded-Proto"),
                                "contextPath": event["requestContext"]["path"],
                                "path": event["path"]})}
"""


def _zip(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", textwrap.dedent(source))
    return buffer.getvalue()


def _function(aws, source: str) -> str:
    lam = aws("lambda")
    name = f"apigw-{uuid.uuid4().hex[:8]}"
    arn = lam.create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=ROLE,
        Handler="app.handler",
        Code={"ZipFile": _zip(source)},
        Timeout=10,
    )["FunctionArn"]
    lam.get_waiter("function_active_v2").wait(
        FunctionName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 150}
    )
    return arn


def _uri(function_arn: str) -> str:
    return f"arn:aws:apigateway:us-east-1:lambda:path/2015-03-31/functions/{function_arn}/invocations"


def _envelope(error: str, message: str) -> str:
    return json.dumps({"success": False, "message": message, "error": error})


@pytest.fixture(scope="module")
def api(aws, bare_localstack: str) -> str:
    """A REST API with a REQUEST authorizer and our gateway responses; its offline stage URL."""
    authorizer_arn = _function(aws, AUTHORIZER)
    echo_arn = _function(aws, ECHO)
    integration = {"type": "aws_proxy", "httpMethod": "POST", "uri": _uri(echo_arn)}
    spec = {
        "swagger": "2.0",
        "info": {"title": f"ext-{uuid.uuid4().hex[:6]}", "version": "1"},
        "paths": {
            "/private": {
                "get": {"security": [{"KeyAuthorizer": []}], "x-amazon-apigateway-integration": integration}
            },
            "/public": {"get": {"x-amazon-apigateway-integration": integration}},
        },
        "securityDefinitions": {
            "KeyAuthorizer": {
                "type": "apiKey",
                "name": "Unused",
                "in": "header",
                "x-amazon-apigateway-authtype": "custom",
                "x-amazon-apigateway-authorizer": {
                    "type": "request",
                    "authorizerUri": _uri(authorizer_arn),
                    "identitySource": "method.request.header.X-Key",
                    "authorizerResultTtlInSeconds": 0,
                },
            }
        },
        "x-amazon-apigateway-gateway-responses": {
            "UNAUTHORIZED": {
                "statusCode": 401,
                "responseTemplates": {
                    "application/json": _envelope("UNAUTHORIZED", "A valid key is required.")
                },
            },
            "ACCESS_DENIED": {
                "statusCode": 403,
                "responseTemplates": {"application/json": _envelope("FORBIDDEN", "Not allowed.")},
            },
            "MISSING_AUTHENTICATION_TOKEN": {
                "statusCode": 404,
                "responseParameters": {"gatewayresponse.header.X-Route": "'unknown'"},
                "responseTemplates": {"application/json": _envelope("NOT_FOUND", "No such route.")},
            },
            "DEFAULT_5XX": {
                "responseTemplates": {
                    "application/json": '{"success": false, "message": $context.error.messageString, '
                    '"error": "INTERNAL_ERROR"}'
                }
            },
        },
    }
    apigw = aws("apigateway")
    api_id = apigw.import_rest_api(body=json.dumps(spec).encode())["id"]
    apigw.create_deployment(restApiId=api_id, stageName="test")
    return f"{bare_localstack}/_aws/execute-api/{api_id}/test"


@pytest.fixture
def client():
    with httpx.Client(timeout=60, trust_env=False) as http:
        yield http


def test_allowed_request_reaches_function_with_authorizer_context(client: httpx.Client, api: str) -> None:
    response = client.get(f"{api}/private", headers={"X-Key": "good"})

    assert response.status_code == 200, response.text
    authorizer = response.json()["authorizer"]
    assert authorizer["principalId"] == "org-123"
    # REST API proxy integrations receive the authorizer's context values as strings
    assert authorizer["orgId"] == "org-123"
    assert authorizer["credits"] == "42"
    assert authorizer["admin"] == "false"


def test_missing_key_gets_rendered_401_gateway_response(client: httpx.Client, api: str) -> None:
    response = client.get(f"{api}/private")

    assert response.status_code == 401
    assert response.json() == {
        "success": False,
        "message": "A valid key is required.",
        "error": "UNAUTHORIZED",
    }


def test_unknown_key_gets_401_from_the_authorizer(client: httpx.Client, api: str) -> None:
    response = client.get(f"{api}/private", headers={"X-Key": "nope"})

    assert response.status_code == 401
    assert response.json()["error"] == "UNAUTHORIZED"


def test_policy_deny_gets_rendered_403(client: httpx.Client, api: str) -> None:
    response = client.get(f"{api}/private", headers={"X-Key": "deny"})

    assert response.status_code == 403
    assert response.json() == {"success": False, "message": "Not allowed.", "error": "FORBIDDEN"}


def test_failing_authorizer_gets_500_with_the_default_5xx_template(client: httpx.Client, api: str) -> None:
    response = client.get(f"{api}/private", headers={"X-Key": "broken"})

    assert response.status_code == 500
    assert response.json()["error"] == "INTERNAL_ERROR"


def test_route_without_authorizer_is_not_authorized(client: httpx.Client, api: str) -> None:
    response = client.get(f"{api}/public")

    assert response.status_code == 200
    assert response.json()["authorizer"] is None


def test_unknown_route_gets_rendered_404_with_response_parameter_header(
    client: httpx.Client, api: str
) -> None:
    response = client.get(f"{api}/nowhere")

    assert response.status_code == 404
    assert response.json() == {"success": False, "message": "No such route.", "error": "NOT_FOUND"}
    assert response.headers["X-Route"] == "unknown"


def test_forwarded_proto_is_the_scheme_as_in_aws(client: httpx.Client, api: str) -> None:
    response = client.get(f"{api}/public")

    assert response.json()["proto"] == "http"


def test_request_context_path_is_the_path_the_client_requested(client: httpx.Client, api: str) -> None:
    response = client.get(f"{api}/public")

    body = response.json()
    # as AWS: the full path the request came in on (here LocalStack's execute-api route), so a
    # function can build absolute URLs from Host + requestContext.path; `path` stays the resource path
    assert body["contextPath"] == httpx.URL(f"{api}/public").path
    assert body["path"] == "/public"
