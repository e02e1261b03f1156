"""LocalStack extension: make the free REST API Gateway (v1) do what AWS does for our API.

The free LocalStack creates Lambda authorizers and GatewayResponses but never runs the former
(every request reaches the function with `requestContext.authorizer` null) and applies only the
status code of the latter (bodies and headers are dropped). This module, loaded through the plux
entry point `localstack.hooks.on_infra_start`, adds both to LocalStack's REST API handler chain
(`services/apigateway/next_gen/execute_api`):

* a handler in `preprocess_request` (after routing, before the integration) that runs TOKEN and
  REQUEST Lambda authorizers with AWS's semantics: identity sources, result caching by identity
  for the authorizer's TTL, IAM policy evaluation against the method ARN (explicit Deny wins),
  401 for `Unauthorized`, 403 on deny, 500 on a broken authorizer, and the authorizer's
  `context` passed on as `requestContext.authorizer`;
* the `x-amazon-apigateway-gateway-responses` of an imported OpenAPI body (where SAM puts an
  `AWS::Serverless::Api`'s GatewayResponses), which LocalStack's import ignores;
* `X-Forwarded-Proto` as AWS sends it (the scheme, `https`/`http`), where LocalStack sends the
  protocol name of `HTTP/1.1` ("HTTP"), which breaks URLs a function builds from it;
* `requestContext.path` as the path the client requested, as in AWS (there `/<stage>/<path>` on
  the default endpoint, the base path included on a custom domain); on LocalStack's
  `/_aws/execute-api/<id>/<stage>/<path>` route LocalStack put only `/<stage>/<path>`, so a
  function building its own absolute URLs (stream playlists, links) pointed nowhere;
* gateway-response rendering: `responseTemplates` (with `$context.*` and `$stageVariables.*`
  substitution, as AWS does for gateway responses) and `responseParameters` headers.

Set VERRIFLO_APIGATEWAY_EXTENSION=0 to run LocalStack without it.
"""

from __future__ import annotations

import fnmatch
import json
import logging
import os
import re
import threading
import time

from localstack.runtime import hooks

LOG = logging.getLogger(__name__)

DEFAULT_TTL_S = 300  # CloudFormation's default for AuthorizerResultTtlInSeconds
_CACHE_MAX = 10_000


@hooks.on_infra_start(should_load=lambda: os.environ.get("VERRIFLO_APIGATEWAY_EXTENSION", "1") != "0")
def verriflo_apigateway_extension():
    """Install the authorizer handler and the gateway-response renderer."""
    from localstack.services.apigateway.next_gen.execute_api import handlers
    from localstack.services.apigateway.next_gen.execute_api.handlers.gateway_exception import (
        GatewayExceptionHandler,
    )

    handlers.modify_request.append(_client_path)
    handlers.preprocess_request.append(LambdaAuthorizerHandler())
    _patch_openapi_import()
    _patch_forwarded_proto()
    original = GatewayExceptionHandler.create_exception_response
    if getattr(original, "_verriflo", False):
        return

    def create_exception_response(self, exception, context):
        rendered = render_gateway_response(exception, context)
        return rendered if rendered is not None else original(self, exception, context)

    create_exception_response._verriflo = True
    GatewayExceptionHandler.create_exception_response = create_exception_response
    LOG.info("verriflo: REST API Lambda authorizers and gateway responses enabled")


_EXECUTE_API_PREFIX = "/_aws/execute-api/"


def _client_path(chain, context, response) -> None:
    """requestContext.path = the path the client requested (see the module docstring)."""
    raw = context.request.environ.get("RAW_URI") or context.request.path
    raw = raw.split("?", 1)[0]
    if raw.startswith(_EXECUTE_API_PREFIX) and context.context_variables is not None:
        context.context_variables["path"] = raw


def _patch_forwarded_proto() -> None:
    from localstack.services.apigateway.next_gen.execute_api.handlers.integration_request import (
        IntegrationRequestHandler,
    )

    original = IntegrationRequestHandler._set_proxy_headers
    if getattr(original, "_verriflo", False):
        return

    def _set_proxy_headers(headers, request):
        original(headers, request)
        headers.set("X-Forwarded-Proto", (request.environ.get("wsgi.url_scheme") or "http").lower())

    _set_proxy_headers._verriflo = True
    IntegrationRequestHandler._set_proxy_headers = staticmethod(_set_proxy_headers)


def _patch_openapi_import() -> None:
    from localstack.services.apigateway.legacy import provider

    original = provider.import_api_from_openapi_spec
    if getattr(original, "_verriflo", False):
        return

    def import_api_from_openapi_spec(rest_api, context, open_api_spec, mode):
        result = original(rest_api, context, open_api_spec, mode)
        try:
            _import_gateway_responses(rest_api.id, context, open_api_spec)
        except Exception:  # noqa: BLE001 - never break the import itself; AWS would have accepted it
            LOG.exception("verriflo: could not import gateway responses of %s", rest_api.id)
        return result

    import_api_from_openapi_spec._verriflo = True
    provider.import_api_from_openapi_spec = import_api_from_openapi_spec


def _import_gateway_responses(rest_api_id: str, context, spec: dict) -> None:
    from localstack.aws.api.apigateway import GatewayResponse
    from localstack.services.apigateway.helpers import get_apigateway_store

    responses = (spec or {}).get("x-amazon-apigateway-gateway-responses") or {}
    container = get_apigateway_store(context=context).rest_apis.get(rest_api_id)
    if container is None:
        return
    for response_type, cfg in responses.items():
        if not isinstance(cfg, dict):
            continue
        gateway_response = GatewayResponse(
            responseType=response_type,
            responseParameters=cfg.get("responseParameters") or {},
            responseTemplates=cfg.get("responseTemplates") or {},
            defaultResponse=False,
        )
        if cfg.get("statusCode") is not None:
            gateway_response["statusCode"] = str(cfg["statusCode"])
        container.gateway_responses[response_type] = gateway_response


# ---- authorizers --------------------------------------------------------------------------------
class _AuthorizerCache:
    def __init__(self):
        self._lock = threading.Lock()
        self._items: dict[tuple, tuple[float, dict]] = {}

    def get(self, key: tuple) -> dict | None:
        with self._lock:
            item = self._items.get(key)
            if item and item[0] > time.monotonic():
                return item[1]
            self._items.pop(key, None)
            return None

    def put(self, key: tuple, ttl_s: int, value: dict) -> None:
        with self._lock:
            if len(self._items) >= _CACHE_MAX:
                now = time.monotonic()
                self._items = {k: v for k, v in self._items.items() if v[0] > now}
            self._items[key] = (time.monotonic() + ttl_s, value)


class LambdaAuthorizerHandler:
    """Runs the method's Lambda authorizer (AuthorizationType CUSTOM), as API Gateway does."""

    def __init__(self):
        self.cache = _AuthorizerCache()

    def __call__(self, chain, context, response):
        from localstack.services.apigateway.next_gen.execute_api.gateway_response import (
            AccessDeniedError,
            AuthorizerConfigurationError,
            UnauthorizedError,
        )

        method = context.resource_method or {}
        if method.get("authorizationType") != "CUSTOM":
            return
        authorizer = context.deployment.rest_api.authorizers.get(method.get("authorizerId") or "")
        if not authorizer or authorizer.get("type") not in ("TOKEN", "REQUEST"):
            LOG.warning(
                "verriflo: method uses a missing or unsupported authorizer: %s", method.get("authorizerId")
            )
            raise AuthorizerConfigurationError()

        ttl = authorizer.get("authorizerResultTtlInSeconds")
        ttl = DEFAULT_TTL_S if ttl is None else int(ttl)
        sources = _identity_sources(authorizer)
        values = [_identity_value(source, context) for source in sources]
        missing = any(v in (None, "") for v in values)
        if authorizer["type"] == "TOKEN":
            token = values[0] if values else None
            pattern = authorizer.get("identityValidationExpression")
            if not token or (pattern and not re.fullmatch(pattern, token)):
                raise UnauthorizedError("Unauthorized")
        elif missing and ttl > 0:
            # AWS refuses a REQUEST authorizer call without its (cache-key) identity sources
            raise UnauthorizedError("Unauthorized")

        method_arn = _method_arn(context)
        key = (context.api_id, authorizer.get("id"), tuple(values)) if ttl > 0 else None
        started = time.monotonic()
        result = self.cache.get(key) if key else None
        if result is None:
            result = self._invoke(authorizer, context, method_arn, values[0] if values else None)
            if key and result.get("cacheable", True):
                self.cache.put(key, ttl, result)
        latency_ms = int((time.monotonic() - started) * 1000)

        if result.get("unauthorized"):
            raise UnauthorizedError("Unauthorized")
        if result.get("error"):
            raise AuthorizerConfigurationError()
        effect = _evaluate_policy(result["policy"], method_arn)
        if effect == "Deny":
            raise AccessDeniedError("User is not authorized to access this resource with an explicit deny")
        if effect != "Allow":
            raise AccessDeniedError("User is not authorized to access this resource")

        authorizer_vars = dict(result["context"])
        authorizer_vars["principalId"] = result["principalId"]
        authorizer_vars["integrationLatency"] = latency_ms
        context.context_variables["authorizer"] = authorizer_vars

    def _invoke(self, authorizer: dict, context, method_arn: str, token: str | None) -> dict:
        from localstack.services.apigateway.next_gen.execute_api.helpers import (
            get_lambda_function_arn_from_invocation_uri,
        )
        from localstack.services.apigateway.next_gen.execute_api.integrations.aws import (
            RestApiAwsProxyIntegration,
        )

        if authorizer["type"] == "TOKEN":
            event = {"type": "TOKEN", "authorizationToken": token, "methodArn": method_arn}
        else:
            event = _request_event(context, method_arn)
        try:
            function_arn = get_lambda_function_arn_from_invocation_uri(authorizer.get("authorizerUri") or "")
            payload = RestApiAwsProxyIntegration.call_lambda(
                function_arn=function_arn,
                event=json.dumps(event).encode(),
                source_arn=_authorizer_source_arn(context, authorizer),
                credentials=authorizer.get("authorizerCredentials"),
            )
        except Exception as exc:  # noqa: BLE001 - any failure to call the authorizer is a 500, as in AWS
            LOG.warning("verriflo: authorizer invocation failed: %s", exc)
            return {"error": True, "cacheable": False}
        return _parse_authorizer_output(payload)


def _identity_sources(authorizer: dict) -> list[str]:
    raw = authorizer.get("identitySource") or ""
    if not raw and authorizer.get("type") == "TOKEN":
        raw = "method.request.header.Authorization"
    return [part.strip() for part in raw.split(",") if part.strip()]


def _identity_value(source: str, context) -> str | None:
    request = context.invocation_request
    if source.startswith("method.request.header."):
        return request["headers"].get(source.removeprefix("method.request.header."))
    if source.startswith("method.request.querystring."):
        return (request.get("query_string_parameters") or {}).get(
            source.removeprefix("method.request.querystring.")
        )
    if source.startswith("method.request.path."):
        return (request.get("path_parameters") or {}).get(source.removeprefix("method.request.path."))
    if source.startswith("stageVariables."):
        return (context.stage_variables or {}).get(source.removeprefix("stageVariables."))
    if source.startswith("context."):
        value = _lookup(context.context_variables, source.removeprefix("context."))
        return None if value is None else str(value)
    return None


def _method_arn(context) -> str:
    request = context.invocation_request
    # the request path below the stage (requestContext.path may carry prefixes)
    path = request.get("path") or "/"
    return (
        f"arn:aws:execute-api:{context.region}:{context.account_id}:{context.api_id}"
        f"/{context.stage}/{request['http_method']}/{path.lstrip('/')}"
    )


def _authorizer_source_arn(context, authorizer: dict) -> str:
    return (
        f"arn:aws:execute-api:{context.region}:{context.account_id}:{context.api_id}"
        f"/authorizers/{authorizer.get('id')}"
    )


def _request_event(context, method_arn: str) -> dict:
    request = context.invocation_request
    headers = request["headers"]
    multi_headers: dict[str, list[str]] = {}
    for name, value in headers.items():
        multi_headers.setdefault(name, []).append(value)
    return {
        "type": "REQUEST",
        "methodArn": method_arn,
        "resource": context.resource.get("path"),
        "path": context.context_variables.get("path") or request.get("path"),
        "httpMethod": request["http_method"],
        "headers": {name: values[-1] for name, values in multi_headers.items()},
        "multiValueHeaders": multi_headers,
        "queryStringParameters": request.get("query_string_parameters") or {},
        "multiValueQueryStringParameters": request.get("multi_value_query_string_parameters") or {},
        "pathParameters": request.get("path_parameters") or {},
        "stageVariables": context.stage_variables or {},
        "requestContext": context.context_variables,
    }


def _parse_authorizer_output(payload: bytes) -> dict:
    try:
        output = json.loads(payload or b"null")
    except ValueError:
        return {"error": True, "cacheable": False}
    if not isinstance(output, dict):
        return {"error": True, "cacheable": False}
    if "errorMessage" in output:
        # `raise Exception("Unauthorized")` in an authorizer is AWS's way to answer 401
        if output.get("errorMessage") == "Unauthorized":
            return {"unauthorized": True}
        return {"error": True, "cacheable": False}
    policy = output.get("policyDocument")
    principal = output.get("principalId")
    raw_context = output.get("context") or {}
    if not isinstance(policy, dict) or principal is None or not isinstance(raw_context, dict):
        return {"error": True, "cacheable": False}
    flat: dict[str, str] = {}
    for key, value in raw_context.items():
        if isinstance(value, (dict, list)):
            # AWS rejects nested context values with a 500
            return {"error": True, "cacheable": False}
        if isinstance(value, bool):
            flat[key] = "true" if value else "false"
        elif value is None:
            flat[key] = ""
        else:
            # REST API proxy integrations receive every authorizer context value as a string
            flat[key] = str(value)
    return {"policy": policy, "principalId": str(principal), "context": flat}


def _as_list(value) -> list:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _arn_matches(pattern: str, arn: str) -> bool:
    # IAM wildcards: * and ? (no character classes)
    return fnmatch.fnmatchcase(arn, pattern.replace("[", "[[]"))


def _evaluate_policy(policy: dict, method_arn: str) -> str | None:
    """IAM evaluation for execute-api:Invoke: explicit Deny > Allow > implicit deny (None)."""
    allowed = False
    for statement in _as_list(policy.get("Statement")):
        if not isinstance(statement, dict):
            continue
        actions = [a.lower() for a in _as_list(statement.get("Action"))]
        if not any(a in ("*", "execute-api:*", "execute-api:invoke") for a in actions):
            continue
        if not any(_arn_matches(r, method_arn) for r in _as_list(statement.get("Resource"))):
            continue
        if statement.get("Effect") == "Deny":
            return "Deny"
        if statement.get("Effect") == "Allow":
            allowed = True
    return "Allow" if allowed else None


# ---- gateway responses --------------------------------------------------------------------------
_VARIABLE = re.compile(r"\$\{?(context|stageVariables)\.([A-Za-z0-9_.]+)\}?")


def _lookup(data, dotted: str):
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return None
        data = data[part]
    return data


def _configured_response(exception, context) -> dict | None:
    """The user's GatewayResponse for this error: its own type, else DEFAULT_4XX/DEFAULT_5XX."""
    from localstack.services.apigateway.next_gen.execute_api.gateway_response import GatewayResponseCode

    responses = context.deployment.rest_api.gateway_responses if context.deployment else {}
    if not responses or not exception.type:
        return None
    if configured := responses.get(exception.type):
        return configured
    default_code = GatewayResponseCode[exception.type].value or str(exception.status_code or 500)
    group = "DEFAULT_5XX" if str(default_code) >= "500" else "DEFAULT_4XX"
    return responses.get(group)


def render_gateway_response(exception, context):
    """A Response built from the user's GatewayResponse, or None to keep LocalStack's default."""
    from localstack.services.apigateway.next_gen.execute_api.gateway_response import BaseGatewayException
    from rolo import Response

    if not isinstance(exception, BaseGatewayException) or context.deployment is None:
        return None
    configured = _configured_response(exception, context)
    if not configured:
        return None
    message = exception.message
    variables = dict(context.context_variables or {})
    variables["error"] = {
        "message": message,
        # messageString is the message as a JSON string literal, quotes included
        "messageString": json.dumps(message),
        "responseType": exception.type,
        "validationErrorString": "",
    }

    def substitute(match: re.Match) -> str:
        source = variables if match.group(1) == "context" else (context.stage_variables or {})
        value = _lookup(source, match.group(2))
        return "" if value is None else str(value)

    templates = configured.get("responseTemplates") or {}
    content_type = "application/json"
    template = templates.get(content_type)
    if template is None and templates:
        content_type, template = next(iter(templates.items()))
    if template is None:
        template = '{"message":$context.error.messageString}'
    body = _VARIABLE.sub(substitute, template)

    headers = {"Content-Type": content_type, "x-amzn-ErrorType": exception.code}
    for key, value in (configured.get("responseParameters") or {}).items():
        if not key.startswith("gatewayresponse.header."):
            continue
        resolved = _parameter_value(value, context, variables)
        if resolved is not None:
            headers[key.removeprefix("gatewayresponse.header.")] = resolved
    status = configured.get("statusCode") or exception.status_code or 500
    return Response(response=body, status=int(status), headers=headers)


def _parameter_value(value: str, context, variables: dict) -> str | None:
    if len(value) >= 2 and value.startswith("'") and value.endswith("'"):
        return value[1:-1]
    request = context.invocation_request or {}
    if value.startswith("method.request.header."):
        return (request.get("headers") or {}).get(value.removeprefix("method.request.header."))
    if value.startswith("method.request.querystring."):
        return (request.get("query_string_parameters") or {}).get(
            value.removeprefix("method.request.querystring.")
        )
    if value.startswith("method.request.path."):
        return (request.get("path_parameters") or {}).get(value.removeprefix("method.request.path."))
    if value.startswith("stageVariables."):
        return (context.stage_variables or {}).get(value.removeprefix("stageVariables."))
    if value.startswith("context."):
        found = _lookup(variables, value.removeprefix("context."))
        return None if found is None else str(found)
    return None
