"""Documents into passages: text out of plain text, Markdown and PDF, then overlapping chunks.

Chunks follow the document's structure (Markdown headings and paragraphs start new sections) and
are cut to about `chunk_words` words with an overlap, so a passage read alone still makes sense and
carries its section title.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass

from verriflo.errors import UnsupportedMediaType, ValidationFailed

TEXT_TYPES = {"text/plain", "text/markdown"}
PDF = "application/pdf"
SUPPORTED_TYPES = sorted(TEXT_TYPES | {PDF})

_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*)$")


@dataclass(frozen=True, slots=True)
class Chunk:
    """A passage of a document, with the section it came from."""

    ordinal: int
    text: str
    section: str


def extract_text(content: bytes, content_type: str) -> str:
    """The document's text; PDFs page by page through pypdf."""
    if content_type in TEXT_TYPES:
        try:
            return content.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValidationFailed("The document is not UTF-8 text.") from exc
    if content_type == PDF:
        from pypdf import PdfReader
        from pypdf.errors import PyPdfError

        try:
            reader = PdfReader(io.BytesIO(content))
            pages = [page.extract_text() or "" for page in reader.pages]
        except (PyPdfError, ValueError, OSError) as exc:
            raise ValidationFailed("The PDF cannot be read.") from exc
        return "\n\n".join(pages)
    raise UnsupportedMediaType(f"Documents must be one of: {', '.join(SUPPORTED_TYPES)}.")


def _sections(text: str) -> list[tuple[str, str]]:
    """(heading, body) pairs; text before the first heading has an empty heading."""
    sections: list[tuple[str, list[str]]] = [("", [])]
    for line in text.splitlines():
        match = _HEADING.match(line)
        if match:
            sections.append((match.group(1).strip(), []))
        else:
            sections[-1][1].append(line)
    return [(title, "\n".join(body)) for title, body in sections if "\n".join(body).strip()]


def chunk_text(text: str, words: int, overlap: int) -> list[Chunk]:
    """Overlapping passages of about `words` words, never spanning two sections."""
    overlap = min(overlap, words // 2)
    chunks: list[Chunk] = []
    for title, body in _sections(text):
        paragraphs = [" ".join(p.split()) for p in re.split(r"\n\s*\n", body) if p.strip()]
        current: list[str] = []
        for paragraph in paragraphs:
            tokens = paragraph.split()
            # A paragraph that fits joins the current passage; a long one is cut with overlap.
            if current and len(current) + len(tokens) > words:
                chunks.append(Chunk(len(chunks), " ".join(current), title))
                current = current[-overlap:] if overlap else []
            current.extend(tokens)
            while len(current) > words:
                chunks.append(Chunk(len(chunks), " ".join(current[:words]), title))
                current = current[words - overlap :]
        if current and (not chunks or chunks[-1].text != " ".join(current)):
            chunks.append(Chunk(len(chunks), " ".join(current), title))
    return chunks
