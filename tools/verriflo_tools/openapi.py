"""The API's one OpenAPI document, merged from every function's routes (a build step, not runtime).

`build_document()` imports each function's resolver (`functions/<name>/<name>/handler.py`, `app`)
and merges their schemas with Powertools' OpenAPIMerge; the result is written into the common layer
as `verriflo/openapi.json` (`verriflo openapi --write`, checked by a test), which the functions
serve with `verriflo.openapi_document.load_document()`.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

from verriflo import access

# Service-to-service routes (the access table's INTERNAL) take the dispatch secret, not an org's
# credentials.
DISPATCH_SCHEME = "dispatchSecret"
TITLE = "Verriflo API"
DESCRIPTION = (
    "Education infrastructure: live classrooms, AI tutor, AI API, media and credits. Every external "
    "request carries `VF-ORG-ID` (the organisation's secret API key) or a dashboard bearer token. "
    'Success: `{"success": true, "data": ...}`; error: `{"success": false, "message", "error"}`.'
)


def function_packages(root: Path) -> list[str]:
    """Names of the function packages under `root` that define an HTTP resolver."""
    names = []
    for handler in sorted(root.glob("*/*/handler.py")):
        if handler.parent.name == handler.parent.parent.name and "app = create_app(" in handler.read_text():
            names.append(handler.parent.name)
    return names


def build_document(root: Path) -> dict[str, Any]:
    """Merge the OpenAPI schemas of every function under `root` (functions/)."""
    from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge
    from aws_lambda_powertools.event_handler.openapi.models import (
        APIKey,
        APIKeyIn,
        HTTPBearer,
        Server,
    )

    merger = OpenAPIMerge(
        title=TITLE,
        version="1.0.0",
        description=DESCRIPTION,
        servers=[Server(url="/")],
        security_schemes={
            "orgKey": APIKey(
                name="VF-ORG-ID", in_=APIKeyIn.header, description="The organisation's secret API key"
            ),
            "dashboardToken": HTTPBearer(
                bearerFormat="JWT", description="A dashboard user's token from /v1/auth/login"
            ),
            DISPATCH_SCHEME: APIKey(
                name="X-Dispatch-Secret",
                in_=APIKeyIn.header,
                description="The internal dispatch secret (service-to-service `/api/*` routes only)",
            ),
        },
        security=[{"orgKey": []}, {"dashboardToken": []}],
        on_conflict="error",
    )
    # Tooling, not a test: make the other layers (e.g. layers/ai) importable the way Lambda does.
    for layer in sorted((root.parent / "layers").glob("*")):
        if layer.is_dir() and str(layer) not in sys.path:
            sys.path.append(str(layer))
    extras = []
    shapes: dict[str, tuple[str, Any]] = {}
    for name in function_packages(root):
        # Tooling, not a test: make each function package importable the way Lambda does.
        path = str(root / name)
        if path not in sys.path:
            sys.path.insert(0, path)
        module = importlib.import_module(f"{name}.handler")
        schema = module.app.get_openapi_schema()
        _check_schema_names(name, schema.model_dump(mode="json", by_alias=True), shapes)
        merger.add_schema(schema)
        # Routes served outside the Powertools resolver (e.g. streamed ones) describe themselves.
        if callable(getattr(module, "openapi_paths", None)):
            extras.append(module.openapi_paths())
    document = json.loads(merger.get_openapi_json_schema())
    for extra in extras:
        _merge_extra(document, extra)
    return _normalise(document)


def _check_schema_names(function: str, schema: dict[str, Any], shapes: dict[str, tuple[str, Any]]) -> None:
    """The merge keeps one schema per name, silently: two functions' models of one name must have
    the same fields, or the document describes one function's answers with the other's model."""
    for model, body in ((schema.get("components") or {}).get("schemas") or {}).items():
        shape = (sorted(body.get("properties") or {}), sorted(body.get("required") or []))
        owner, known = shapes.setdefault(model, (function, shape))
        if known != shape:
            raise ValueError(f"schema {model!r} of {function} differs from {owner}'s: rename one model")


def _merge_extra(document: dict[str, Any], extra: dict[str, Any]) -> None:
    """Add a function's own paths and schemas; a path defined twice is an error, as in the merge."""
    paths = document.setdefault("paths", {})
    for path, operations in extra.get("paths", {}).items():
        clash = set(operations) & set(paths.get(path, {}))
        if clash:
            raise ValueError(f"{path} {sorted(clash)} is defined twice")
        paths.setdefault(path, {}).update(operations)
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in extra.get("components", {}).get("schemas", {}).items():
        schemas.setdefault(name, schema)


def _normalise(document: dict[str, Any]) -> dict[str, Any]:
    """Describe errors as the API really returns them: 400 (not 422), 415 for a body that is not
    JSON and 500 in the envelope; public routes need no credentials, internal ones the dispatch secret."""
    error = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}}
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            act = access.action(method, path)
            if operation.pop("x-verriflo-public", False):
                operation["security"] = []
            elif act is access.Action.INTERNAL:
                operation["security"] = [{DISPATCH_SCHEME: []}]
            answers = operation.get("responses", {})
            _describe_access(operation, answers, act, error)
            answers.pop("422", None)
            answers.setdefault("400", {"description": "The request is not valid.", **error})
            if "requestBody" in operation:
                media = "The request body must be application/json."
                answers.setdefault("415", {"description": media, **error})
            answers["500"] = {"description": "Something went wrong on our side.", **error}
    schemas = document.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        schemas.pop(name, None)
    return document


def _describe_access(
    operation: dict[str, Any], answers: dict[str, Any], act: access.Action | None, error: dict[str, Any]
) -> None:
    """Say which roles may call an org route (`x-verriflo-roles`), and its 403 when some may not."""
    if act is None or act in (access.Action.PUBLIC, access.Action.INTERNAL):
        return
    roles = [role for role in access.ROLE_ACTIONS if access.allows(role, act)]
    operation["x-verriflo-roles"] = roles
    if len(roles) < len(access.ROLE_ACTIONS):
        refused = f"Not for the caller's role (allowed: {', '.join(roles)})."
        answers.setdefault("403", {"description": refused, **error})


def render(document: dict[str, Any]) -> str:
    """Stable JSON text of the document (sorted keys, so diffs are meaningful)."""
    return json.dumps(document, indent=1, sort_keys=True) + "\n"
