"""Documents into passages: text out of plain text, Markdown and PDF, then chunks that keep sentences
whole.

Chunks follow the document's structure: a heading starts a new section, and no chunk spans two.
In Markdown a heading is a `#` line; in a PDF, a line set larger than the page's body text, a
numbered heading ("2.1 Forces", "Chapter 3 Waves") or a short line in capitals. A PDF is chunked
page by page (a page that starts without a heading continues the section of the page before), and
each of its chunks carries its page number, so a citation names the page.

A section longer than `chunk_words` words is cut between sentences, and the next chunk starts with
the last sentences of the one before (up to the overlap), so a passage read alone still makes sense
and carries its section title. Only a sentence longer than a whole chunk is cut inside, with an
overlap of words.
"""

from __future__ import annotations

import io
import math
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from verriflo.errors import UnsupportedMediaType, ValidationFailed

TEXT_TYPES = {"text/plain", "text/markdown"}
PDF = "application/pdf"
SUPPORTED_TYPES = sorted(TEXT_TYPES | {PDF})

_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*)$")


@dataclass(frozen=True, slots=True)
class Chunk:
    """A passage of a document, with the section (and, in a PDF, the page) it came from."""

    ordinal: int
    text: str
    section: str
    page: int | None = None  # 1-based page of a PDF; None for text documents


@dataclass(frozen=True, slots=True)
class Page:
    """The text of one PDF page (headings marked as Markdown headings), or a whole text document
    (`number` None)."""

    number: int | None
    text: str


# --- text out of documents ---------------------------------------------------------------------------


def extract_pages(content: bytes, content_type: str) -> list[Page]:
    """The document's text: one page for text documents, a PDF page by page through pypdf."""
    if content_type in TEXT_TYPES:
        try:
            return [Page(None, content.decode("utf-8"))]
        except UnicodeDecodeError as exc:
            raise ValidationFailed("The document is not UTF-8 text.") from exc
    if content_type == PDF:
        from pypdf import PdfReader
        from pypdf.errors import PyPdfError

        try:
            reader = PdfReader(io.BytesIO(content))
            return [Page(number, _pdf_page_text(page)) for number, page in enumerate(reader.pages, 1)]
        except (PyPdfError, ValueError, OSError) as exc:
            raise ValidationFailed("The PDF cannot be read.") from exc
    raise UnsupportedMediaType(f"Documents must be one of: {', '.join(SUPPORTED_TYPES)}.")


def extract_text(content: bytes, content_type: str) -> str:
    """The document's whole text (a PDF's pages one after another)."""
    return "\n\n".join(page.text for page in extract_pages(content, content_type))


def _pdf_page_text(page: Any) -> str:
    """A PDF page's text with its headings marked `# ...` and words cut at a line's end joined."""
    fragments: list[tuple[str, float]] = []

    def visit(text: str, cm: Any, tm: Any, font: Any, size: float) -> None:
        if text.strip():
            # The size on the page: the font's size scaled by the text and graphics matrices.
            scale = math.hypot(float(tm[2]), float(tm[3])) * math.hypot(float(cm[2]), float(cm[3]))
            fragments.append((text, float(size) * (scale or 1.0)))

    raw = page.extract_text(visitor_text=visit) or ""
    text = _mark_headings(raw.splitlines(), _large_words(fragments))
    return re.sub(r"(\w)-\n+(?=[a-z])", r"\1", text)


def _large_words(fragments: list[tuple[str, float]]) -> set[str]:
    """Words set clearly larger than the page's body text (the size most of its characters have)."""
    if not fragments:
        return set()
    weight: Counter[float] = Counter()
    for text, size in fragments:
        weight[round(size, 1)] += len(text.strip())
    body = weight.most_common(1)[0][0]
    return {w for text, size in fragments if size >= body * 1.15 for w in text.split()}


_NUMBERED = re.compile(
    r"^(?:\d+(?:\.\d+)*\.?|[IVX]+\.|(?:chapter|section|part|unit|lesson)\s+\d+\S*)\s+\S", re.I
)
_PAGE_NUMBER = re.compile(r"(?:page\s+)?\d+(?:\s*(?:/|of)\s*\d+)?", re.I)


def _looks_like_heading(line: str, large: set[str], lines: list[str], at: int) -> bool:
    words = line.split()
    if len(words) > 12 or len(line) > 100 or line[-1] in ".,;:" or _HEADING.match(line):
        return False
    if large and all(w in large for w in words):
        return True
    if _NUMBERED.match(line):
        # Numbered lines next to each other are a list, not headings.
        neighbours = [lines[i] for i in (at - 1, at + 1) if 0 <= i < len(lines) and lines[i]]
        return not any(_NUMBERED.match(n) for n in neighbours)
    letters = [c for c in line if c.isalpha()]
    return len(letters) >= 3 and line.isupper() and len(words) <= 8


def _mark_headings(raw_lines: list[str], large: set[str]) -> str:
    lines = [" ".join(line.split()) for line in raw_lines]
    filled = [at for at, line in enumerate(lines) if line]
    ends = {filled[0], filled[-1]} if filled else set()
    out: list[str] = []
    for at, line in enumerate(lines):
        if not line:
            out.append("")
        elif at in ends and _PAGE_NUMBER.fullmatch(line):
            continue  # a page number in the header or footer
        elif _looks_like_heading(line, large, lines, at):
            out += ["", f"# {line}", ""]
        else:
            out.append(line)
    return "\n".join(out)


# --- sentences ---------------------------------------------------------------------------------------

_SENTENCE_BREAK = re.compile(r"(?<=[.!?])([\"'\u201d\u2019)\]]*)\s+(?=[\"'\u201c\u2018(\[]?[A-Z0-9])")
_ABBREVIATIONS = {
    "e.g.", "i.e.", "mr.", "mrs.", "ms.", "dr.", "prof.", "st.", "vs.", "etc.", "fig.", "no.", "p.",
    "pp.", "cf.", "approx.", "eq.", "vol.", "ch.", "sec.",
}  # fmt: skip


def sentences(paragraph: str) -> list[str]:
    """A paragraph's sentences (a full stop after an abbreviation or an initial ends none)."""
    out: list[str] = []
    start = 0
    for match in _SENTENCE_BREAK.finditer(paragraph):
        end = match.end(1)
        words = paragraph[start:end].split()
        last = words[-1].lower() if words else ""
        if last in _ABBREVIATIONS or re.fullmatch(r"\(?[a-z]\.", last):
            continue
        out.append(paragraph[start:end].strip())
        start = match.end()
    rest = paragraph[start:].strip()
    if rest:
        out.append(rest)
    return [s for s in out if s]


# --- chunks ------------------------------------------------------------------------------------------


def _sections(text: str, first: str = "") -> tuple[list[tuple[str, str]], str]:
    """(heading, body) pairs, text before the first heading under `first`; and the last heading."""
    sections: list[tuple[str, list[str]]] = [(first, [])]
    for line in text.splitlines():
        match = _HEADING.match(line)
        if match:
            sections.append((match.group(1).strip(), []))
        else:
            sections[-1][1].append(line)
    kept = [(title, "\n".join(body)) for title, body in sections if "\n".join(body).strip()]
    return kept, sections[-1][0]


def _windows(tokens: list[str], words: int, overlap: int) -> list[list[str]]:
    """A sentence longer than a chunk, cut into overlapping pieces of `words` words."""
    step = max(1, words - overlap)
    pieces = []
    for start in range(0, len(tokens), step):
        pieces.append(tokens[start : start + words])
        if start + words >= len(tokens):
            break
    return pieces


def _tail(parts: list[list[str]], overlap: int) -> list[list[str]]:
    """The last whole sentences of a chunk that fit in `overlap` words."""
    tail: list[list[str]] = []
    for part in reversed(parts):
        if sum(map(len, tail)) + len(part) > overlap:
            break
        tail.insert(0, part)
    return tail


def _section_texts(body: str, words: int, overlap: int) -> list[str]:
    """A section's passages: whole sentences up to about `words` words each, overlapping."""
    texts: list[str] = []
    current: list[list[str]] = []  # the sentences (token lists) of the passage being built
    for paragraph in re.split(r"\n\s*\n", body):
        paragraph = " ".join(paragraph.split())
        for sentence in sentences(paragraph):
            tokens = sentence.split()
            for piece in [tokens] if len(tokens) <= words else _windows(tokens, words, overlap):
                if current and sum(map(len, current)) + len(piece) > words:
                    texts.append(" ".join(w for part in current for w in part))
                    current = _tail(current, overlap)
                    if sum(map(len, current)) + len(piece) > words:
                        current = []
                current.append(piece)
    if current:  # it ends with a sentence no passage has yet
        texts.append(" ".join(w for part in current for w in part))
    return texts


def chunk_pages(pages: list[Page], words: int, overlap: int) -> list[Chunk]:
    """The passages of a document's pages, in order, never spanning two sections or pages."""
    overlap = min(overlap, words // 2)
    chunks: list[Chunk] = []
    section = ""
    for page in pages:
        parts, section = _sections(page.text, section)
        for title, body in parts:
            for text in _section_texts(body, words, overlap):
                chunks.append(Chunk(len(chunks), text, title, page.number))
    return chunks


def chunk_text(text: str, words: int, overlap: int) -> list[Chunk]:
    """Overlapping passages of about `words` words of a text document, never spanning two sections."""
    return chunk_pages([Page(None, text)], words, overlap)


def chunk_document(content: bytes, content_type: str, words: int, overlap: int) -> list[Chunk]:
    """A document's passages: text by section, a PDF by page and section."""
    return chunk_pages(extract_pages(content, content_type), words, overlap)
