"""What clients upload to the AI routes: base64 fields decoded within a size limit, and the one
document-upload model behind the AI API's knowledge-base documents and the tutor's class material."""

# No `from __future__ import annotations`: pydantic would evaluate each string annotation as it
# creates the model classes below, a cost every cold start pays.

import base64
import binascii
from typing import Literal, Self

from pydantic import Field, model_validator
from verriflo.errors import PayloadTooLarge, UnsupportedMediaType, ValidationFailed
from verriflo.models import StrictApiModel

from verriflo_ai.settings import ai_settings

PDF = "application/pdf"
DocumentType = Literal["text/plain", "text/markdown", "application/pdf"]


def decode_base64(value: str, name: str, limit: int | None = None, *, too_large: str | None = None) -> bytes:
    """A base64 field (a `data:` URL prefix allowed) as bytes: 413 over `limit` bytes (judged first
    from the encoded length, so an oversized upload is never decoded), 400 when not base64 or empty."""
    if not isinstance(value, str):
        raise ValidationFailed(f"{name} must be base64.")
    if value.startswith("data:"):
        value = value.split(",", 1)[-1]
    too_large = too_large or f"{name} is larger than {limit} bytes."
    if limit is not None and len(value) * 3 // 4 > limit + 3:
        raise PayloadTooLarge(too_large)
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationFailed(f"{name} is not valid base64.") from exc
    if not data:
        raise ValidationFailed(f"{name} is empty.")
    if limit is not None and len(data) > limit:
        raise PayloadTooLarge(too_large)
    return data


class DocumentUpload(StrictApiModel):
    """A document: `content` as text, or `contentBase64` for PDFs and other binary files."""

    title: str = Field(min_length=1, max_length=200)
    content_type: DocumentType = "text/plain"
    content: str | None = None
    content_base64: str | None = None

    @model_validator(mode="after")
    def _one_content(self) -> Self:
        if (self.content is None) == (self.content_base64 is None):
            raise ValueError("give exactly one of content or contentBase64")
        return self

    def content_bytes(self, limit: int | None = None) -> bytes:
        """The document as bytes (text as UTF-8, or base64), within `limit` bytes (default: the AI
        settings' document limit; 413), not empty (400), and a PDF when it says so (415): the one
        check of every route that ingests one."""
        limit = ai_settings().max_document_bytes if limit is None else limit
        too_large = f"Documents are limited to {limit} bytes."
        if self.content_base64 is not None:
            data = decode_base64(self.content_base64, "contentBase64", limit, too_large=too_large)
        else:
            data = (self.content or "").encode()
        if len(data) > limit:
            raise PayloadTooLarge(too_large)
        if not data.strip():
            raise ValidationFailed("The document is empty.")
        if self.content_type == PDF and not data.startswith(b"%PDF"):
            raise UnsupportedMediaType("The content is not a PDF.")
        return data
