"""Every HTTP route of every function, as registered: for the tests of the access table."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import cache
from types import ModuleType
from typing import Any

from support import ROOT

DASHBOARD_ROLES = ("owner", "admin", "member", "viewer")
HTTP_METHODS = {"get", "post", "put", "patch", "delete", "head", "options"}


@dataclass(frozen=True)
class Registered:
    """One route as a function registered it."""

    method: str
    path: str  # OpenAPI form: /v1/room/{room_id}
    function: str
    streamed: bool  # on the function's ASGI app rather than its Powertools resolver
    rate_limited: bool  # Powertools: behind `protected(...)`; ASGI: registered with a `group`
    internal: bool  # ASGI: registered with `internal=True`
    public: bool  # Powertools: marked PUBLIC


def _streamed_apps(module: ModuleType) -> list[Any]:
    from verriflo import asgi

    return [
        value.app
        for value in vars(module).values()
        if isinstance(value, ModuleType) and isinstance(getattr(value, "app", None), asgi.App)
    ]


@cache
def handler_modules() -> dict[str, ModuleType]:
    """Each HTTP function's `handler` module, by function name."""
    from verriflo_tools.openapi import function_packages

    return {
        name: importlib.import_module(f"{name}.handler") for name in function_packages(ROOT / "functions")
    }


@cache
def registered_routes() -> tuple[Registered, ...]:
    """Every route of every HTTP function, buffered and streamed."""
    found = []
    for name, module in handler_modules().items():
        for route in module.app._static_routes + module.app._dynamic_routes:  # noqa: SLF001
            found.append(
                Registered(
                    method=route.method,
                    path=route.openapi_path,
                    function=name,
                    streamed=False,
                    rate_limited=any(
                        getattr(m, "__name__", "").startswith("rate_limited_") for m in route.middlewares
                    ),
                    internal=False,
                    public=bool((route.openapi_extensions or {}).get("x-verriflo-public")),
                )
            )
        for app in _streamed_apps(module):
            for (method, path), entry in app._routes.items():  # noqa: SLF001
                found.append(
                    Registered(
                        method=method,
                        path=path,
                        function=name,
                        streamed=True,
                        rate_limited=entry.group is not None,
                        internal=entry.internal,
                        public=False,
                    )
                )
    return tuple(found)


def document_operations() -> list[tuple[str, str, dict[str, Any]]]:
    """(METHOD, path, operation) of every operation in the served OpenAPI document."""
    from verriflo.openapi_document import load_document

    document = load_document()
    return [
        (method.upper(), path, operation)
        for path, operations in document["paths"].items()
        for method, operation in operations.items()
        if method in HTTP_METHODS
    ]
