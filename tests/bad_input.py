"""Bad input for every operation of the OpenAPI document, shared by the in-process integration test
and the end-to-end test through the deployed stack: each case is a raw request body with its
Content-Type and the status every route must answer with (4xx, never 5xx)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

SURROGATE = "\\ud800"  # a lone UTF-16 surrogate as JSON spells it: valid JSON text, no UTF-8 form
DEPTH = 10_000


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # the document's template, e.g. /v1/room/{room_id}
    spec: dict[str, Any]

    @property
    def id(self) -> str:
        return f"{self.method.upper()} {self.path}"

    @property
    def public(self) -> bool:
        return self.spec.get("security") == []

    @property
    def internal(self) -> bool:
        return {"dispatchSecret": []} in (self.spec.get("security") or [])

    @property
    def has_body(self) -> bool:
        return "requestBody" in self.spec

    def url_path(self, value: str = "missing1") -> str:
        """The path with every parameter filled (a well-formed id that does not exist)."""
        return re.sub(r"\{(\w+)\}", lambda m: "360p" if m.group(1) == "rendition" else value, self.path)


@dataclass(frozen=True)
class BadBody:
    name: str
    content_type: str
    body: bytes
    status: int
    error: str


def operations(document: dict[str, Any]) -> list[Operation]:
    """Every operation of the document, CORS preflights aside (they take no body and no key)."""
    return [
        Operation(method, path, spec)
        for path, methods in sorted(document["paths"].items())
        for method, spec in sorted(methods.items())
        if method != "options"
    ]


def request_fields(document: dict[str, Any], operation: Operation) -> list[str]:
    """The top-level properties of the operation's JSON body (so the text lands in real fields:
    chat messages, tutor questions, document content, ...)."""
    schema = operation.spec["requestBody"]["content"]["application/json"]["schema"]
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return sorted(schema.get("properties") or {}) or ["text"]


def bad_bodies(fields: list[str]) -> list[BadBody]:
    """The bad bodies of issue 12 for a route whose JSON body has `fields`."""
    surrogates = ", ".join(f'"{name}": "a{SURROGATE}b"' for name in fields)
    return [
        BadBody("not-utf8", "application/json", b'{"text": "caf\xe9 \xff"}', 400, "VALIDATION_ERROR"),
        BadBody("text-plain", "text/plain", b"{}", 415, "UNSUPPORTED_MEDIA_TYPE"),
        BadBody("form", "application/x-www-form-urlencoded", b"a=1", 415, "UNSUPPORTED_MEDIA_TYPE"),
        BadBody("nested", "application/json", b"[" * DEPTH + b"]" * DEPTH, 400, "VALIDATION_ERROR"),
        BadBody("surrogate", "application/json", ("{" + surrogates + "}").encode(), 400, "VALIDATION_ERROR"),
    ]


def check_error(status: int, headers: Any, body: Any, request_id: str | None = None) -> None:
    """An error answer: 4xx, the error envelope, and the request id (the one sent, when known)."""
    assert 400 <= status < 500, (status, body)
    assert isinstance(body, dict) and body.get("success") is False, body
    assert isinstance(body.get("message"), str) and re.fullmatch(r"[A-Z_]+", body.get("error", "")), body
    names = {name.lower(): value for name, value in dict(headers).items()}
    assert names.get("x-request-id"), headers
    if request_id is not None:
        assert names["x-request-id"] == request_id


def check_answer(status: int, headers: Any, body: Any, request_id: str | None = None) -> None:
    """Any answer: never a 5xx, always the request id; an error is `check_error`'s."""
    assert status < 500, (status, body)
    if status >= 400:
        check_error(status, headers, body, request_id)
    else:
        assert {name.lower() for name in dict(headers)} >= {"x-request-id"}, headers
