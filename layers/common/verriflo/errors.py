"""The one error vocabulary: each domain error carries its HTTP status and envelope code."""

from __future__ import annotations

from typing import Any, ClassVar


class VerrifloError(Exception):
    """Base of every error a client may see; rendered once, by the API layer, as the envelope."""

    status: ClassVar[int] = 500
    code: ClassVar[str] = "INTERNAL_ERROR"
    default_message: ClassVar[str] = "Something went wrong on our side."

    def __init__(
        self,
        message: str | None = None,
        *,
        headers: dict[str, str] | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.headers = headers or {}
        self.details = details
        super().__init__(self.message)

    def envelope(self) -> dict[str, Any]:
        """The error envelope of API.md."""
        body: dict[str, Any] = {"success": False, "message": self.message, "error": self.code}
        if self.details:
            body["details"] = self.details
        return body


class ValidationFailed(VerrifloError):
    status, code, default_message = 400, "VALIDATION_ERROR", "The request is not valid."


class BadRequest(VerrifloError):
    status, code, default_message = 400, "BAD_REQUEST", "The request cannot be processed."


class Unauthorized(VerrifloError):
    status, code, default_message = 401, "UNAUTHORIZED", "A valid VF-ORG-ID key or bearer token is required."


class InsufficientCredits(VerrifloError):
    status, code, default_message = 402, "INSUFFICIENT_CREDITS", "Insufficient credits."


class Forbidden(VerrifloError):
    status, code, default_message = 403, "FORBIDDEN", "You are not allowed to do this."


class NotFound(VerrifloError):
    status, code, default_message = 404, "NOT_FOUND", "Not found."


class MethodNotAllowed(VerrifloError):
    status, code, default_message = 405, "METHOD_NOT_ALLOWED", "This method is not allowed on this path."


class Conflict(VerrifloError):
    status, code, default_message = 409, "CONFLICT", "The resource already exists."


class Gone(VerrifloError):
    status, code, default_message = 410, "GONE", "The resource no longer exists."


class PayloadTooLarge(VerrifloError):
    status, code, default_message = 413, "PAYLOAD_TOO_LARGE", "The request body is too large."


class UnsupportedMediaType(VerrifloError):
    status, code, default_message = 415, "UNSUPPORTED_MEDIA_TYPE", "This media type is not supported."


class RateLimited(VerrifloError):
    status, code, default_message = 429, "RATE_LIMITED", "Too many requests; retry after the time given."


class UpstreamError(VerrifloError):
    status, code, default_message = 502, "UPSTREAM_ERROR", "A service we depend on failed."


class ServiceUnavailable(VerrifloError):
    status, code, default_message = 503, "SERVICE_UNAVAILABLE", "A dependency is unavailable; retry shortly."


ERROR_CLASSES: tuple[type[VerrifloError], ...] = (
    ValidationFailed,
    BadRequest,
    Unauthorized,
    InsufficientCredits,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    Gone,
    PayloadTooLarge,
    UnsupportedMediaType,
    RateLimited,
    UpstreamError,
    ServiceUnavailable,
    VerrifloError,
)
