"""The AI API's domain logic: check a chat request, gather its context, stream the answer as
NDJSON-ready events, then keep the history and meter the tokens.

Everything that can reject a request (bad base64, unsupported type, oversized media, unknown
knowledge base, no credits, Redis down) happens in `prepare`, before any model is called and
before a byte of the stream is sent. `answer` then yields events; a provider failure mid-stream
becomes an `error` event followed by `done`, and nothing is written to the history.
"""

# No `from __future__ import annotations`: pydantic would evaluate each string annotation as it
# creates every model class below, a cost every cold start pays.

import base64
import binascii
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, Self

from ai_agent import history, store
from pydantic import Field, model_validator
from verriflo.auth import OrgContext
from verriflo.errors import (
    PayloadTooLarge,
    UpstreamError,
    ValidationFailed,
    VerrifloError,
)
from verriflo.ledger import from_milli, to_milli
from verriflo.models import ApiModel, StrictApiModel
from verriflo.observability import logger
from verriflo.pricing import ai_tokens
from verriflo_ai import images, knowledge, metering, speech
from verriflo_ai.documents import document_bytes
from verriflo_ai.providers import (
    GenerationRequest,
    Message,
    Passage,
    Provider,
    ProviderError,
    TextDelta,
    Usage,
    provider,
    split_sentences,
)
from verriflo_ai.settings import ai_settings

NDJSON = "application/x-ndjson"
ID_PATTERN = r"^[A-Za-z0-9_-]{1,100}$"
Modality = Literal["text", "audio", "text+audio"]


# --- requests and answers -------------------------------------------------------------------------


class ChatRequest(StrictApiModel):
    """A chat turn: text, voice or an image in; text and/or speech out (API.md)."""

    chat_id: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        description="keeps history across turns; omit for a one-off question",
    )
    message: str | None = Field(default=None, description="the question or message")
    audio: str | None = Field(default=None, description="base64 WAV, MP3 or WebM/Opus")
    image: str | None = Field(default=None, description="base64 PNG, JPEG, WebP or GIF")
    image_mime_type: str | None = None
    voice_name: str | None = Field(default=None, max_length=64)
    response_modality: Modality = "text"
    knowledge_base_ids: list[str] = Field(
        default_factory=list, max_length=5, description="answer from these knowledge bases, with citations"
    )

    @model_validator(mode="after")
    def _something_to_answer(self) -> Self:
        if not ((self.message and self.message.strip()) or self.audio or self.image):
            raise ValueError("give a message, audio or an image")
        if self.image and not self.image_mime_type:
            raise ValueError("imageMimeType is required with an image")
        return self


class HistoryMessage(ApiModel):
    """One message of the history a caller supplies to the internal generate routes."""

    role: Literal["user", "assistant"]
    text: str = Field(max_length=20_000)


class GenerateRequest(StrictApiModel):
    """Internal generation for another service: an org, a message, optional history and grounding."""

    org_id: str = Field(min_length=1, max_length=100)
    message: str = Field(min_length=1)
    history: list[HistoryMessage] = Field(default_factory=list, max_length=50)
    knowledge_base_ids: list[str] = Field(default_factory=list, max_length=5)
    max_tokens: int | None = Field(default=None, ge=16, le=8192)


class Citation(ApiModel):
    """A passage an answer used."""

    index: int
    knowledge_base_id: str
    document_id: str
    title: str
    chunk: int
    score: float
    text: str


class TokenUsage(ApiModel):
    """Tokens of one request and what they cost."""

    input_tokens: int
    output_tokens: int
    total_tokens: int
    credits: float


class ImageOut(ApiModel):
    """A picture produced with the answer (base64)."""

    image: str
    mime_type: str
    alt: str = ""


class ChatAnswer(ApiModel):
    """The whole answer of `POST /v1/ai-agent/chat`."""

    chat_id: str | None
    text: str
    audio: str | None = None
    audio_mime_type: str | None = None
    images: list[ImageOut] = Field(default_factory=list)
    citations: list[Citation] = Field(default_factory=list)
    transcript: str | None = Field(default=None, description="what the audio said, when audio was sent")
    usage: TokenUsage
    request_modality: str
    response_modality: Modality


class ChatMessage(ApiModel):
    """A message of a stored chat."""

    role: Literal["user", "assistant"]
    text: str
    created_at: datetime


class ChatHistory(ApiModel):
    """A chat's stored messages, oldest first."""

    chat_id: str
    messages: list[ChatMessage]
    expires_in: int = Field(description="seconds until the chat is forgotten")


class ChatSummary(ApiModel):
    """One chat of the list: what it is about and how far it went."""

    chat_id: str
    title: str = Field(description="the first question, shortened")
    preview: str = Field(description="the start of the last answer")
    turns: int = Field(description="questions answered in this chat (older ones may have been trimmed)")
    created_at: datetime
    updated_at: datetime


class ChatList(ApiModel):
    """A page of the org's chats, most recently updated first."""

    items: list[ChatSummary]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at the end")


class ChatDeleted(ApiModel):
    """The chat is gone."""

    chat_id: str
    deleted: bool = True


class UsageTotals(ApiModel):
    """`summary` of the usage summary (API.md)."""

    total_sessions: int
    total_token_cost: float
    total_input_tokens: int
    total_output_tokens: int


class AgentBreakdown(ApiModel):
    """AI API usage in the period."""

    sessions: int
    requests: int
    failed_requests: int
    input_tokens: int
    output_tokens: int
    cost: float


class TutorBreakdown(ApiModel):
    """AI tutor usage in the period."""

    interactions: int
    students: int
    rooms: int
    failed_interactions: int
    input_tokens: int
    output_tokens: int
    cost: float


class Breakdown(ApiModel):
    """Usage per service."""

    ai_agent: AgentBreakdown
    ai_tutor: TutorBreakdown


class UsageSummary(ApiModel):
    """`GET /v1/ai-agent/usage/summary` (API.md), costs in credits."""

    summary: UsageTotals
    breakdown: Breakdown
    start_date: date
    end_date: date


class CreateKnowledgeBase(StrictApiModel):
    """A new knowledge base."""

    name: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=1000)


class AddDocument(StrictApiModel):
    """A document: `content` as text, or `contentBase64` for PDFs and other binary files."""

    title: str = Field(min_length=1, max_length=200)
    content_type: Literal["text/plain", "text/markdown", "application/pdf"] = "text/plain"
    content: str | None = None
    content_base64: str | None = None

    @model_validator(mode="after")
    def _one_content(self) -> Self:
        if (self.content is None) == (self.content_base64 is None):
            raise ValueError("give exactly one of content or contentBase64")
        return self


class Deleted(ApiModel):
    """Something was deleted."""

    id: str
    deleted: bool = True


# --- preparing a request (everything that may reject it) -----------------------------------------


def _decode_base64(value: str, field_name: str, limit: int) -> bytes:
    # Size first, from the encoded length, so an oversized upload is never decoded.
    if len(value) * 3 // 4 > limit + 3:
        raise PayloadTooLarge(f"{field_name} is larger than {limit} bytes.")
    if value.startswith("data:"):
        value = value.split(",", 1)[-1]
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValidationFailed(f"{field_name} is not valid base64.") from exc
    if not data:
        raise ValidationFailed(f"{field_name} is empty.")
    if len(data) > limit:
        raise PayloadTooLarge(f"{field_name} is larger than {limit} bytes.")
    return data


@dataclass
class Prepared:
    """A checked request with its context, ready to be answered."""

    org_id: str
    request_id: str
    chat_id: str | None
    question: str
    generation: GenerationRequest
    request_modality: str
    response_modality: Modality = "text"
    voice: str | None = None
    transcript: str | None = None
    passages: list[Passage] = field(default_factory=list)


def _request_modality(body: ChatRequest) -> str:
    kinds = [k for k, v in (("text", body.message), ("audio", body.audio), ("image", body.image)) if v]
    return "+".join(kinds)


def _history_messages(org_id: str, chat_id: str | None) -> tuple[Message, ...]:
    if not chat_id:
        return ()
    keep = ai_settings().history_context_turns
    stored = history.read(org_id, chat_id)
    return tuple(Message(m["role"], m["text"]) for m in stored[-keep:]) if keep else ()


def prepare_chat(org: OrgContext, body: ChatRequest, request_id: str) -> Prepared:
    """Check and enrich a chat request; raises the right 4xx/5xx before any model work."""
    settings = ai_settings()
    message = (body.message or "").strip()
    if len(message) > settings.max_message_chars:
        raise PayloadTooLarge(f"message is longer than {settings.max_message_chars} characters.")
    audio = _decode_base64(body.audio, "audio", settings.max_audio_bytes) if body.audio else None
    if audio is not None:
        speech.sniff_audio(audio)
    image = _decode_base64(body.image, "image", settings.max_image_bytes) if body.image else None
    mime = images.check_image(image, body.image_mime_type) if image is not None else None
    wants_audio = body.response_modality in ("audio", "text+audio")
    voice = body.voice_name
    if wants_audio and voice and settings.voice_provider == "local" and voice not in speech.espeak_voices():
        raise ValidationFailed(f"Unknown voiceName '{voice}'.")
    if body.knowledge_base_ids:  # 404 for another org's base, 409 for one of another embedding
        knowledge.check_bases(org.org_id, body.knowledge_base_ids)
    metering.require_credits(org.org_id)
    past = _history_messages(org.org_id, body.chat_id)  # Redis down: 503 here, before any model call

    transcript = None
    if audio is not None:
        transcript = speech.transcribe(audio).text
        if not transcript and not message and image is None:
            raise ValidationFailed("No speech was recognised in the audio.")
    question = " ".join(p for p in (message, transcript) if p)
    note = ""
    if image is not None:
        seen = images.read_image(image, mime or "")
        note = (
            f"Text read from the attached image: {seen}"
            if seen
            else "An image was attached; no text could be read from it."
        )
        question = question or seen
    kb_ids = body.knowledge_base_ids
    passages = knowledge.search(org.org_id, kb_ids, question) if kb_ids else []
    generation = GenerationRequest(
        question=question or "(no question)",
        history=past,
        passages=tuple(passages),
        grounded=bool(kb_ids),
        context_note=note,
    )
    return Prepared(
        org_id=org.org_id,
        request_id=request_id,
        chat_id=body.chat_id,
        question=question,
        generation=generation,
        request_modality=_request_modality(body),
        response_modality=body.response_modality,
        voice=voice,
        transcript=transcript,
        passages=passages,
    )


def prepare_generate(body: GenerateRequest, request_id: str) -> Prepared:
    """Check an internal generation request (the org must exist and hold credits)."""
    settings = ai_settings()
    if len(body.message) > settings.max_message_chars:
        raise PayloadTooLarge(f"message is longer than {settings.max_message_chars} characters.")
    if body.knowledge_base_ids:
        knowledge.check_bases(body.org_id, body.knowledge_base_ids)
    metering.require_credits(body.org_id)
    kb_ids = body.knowledge_base_ids
    passages = knowledge.search(body.org_id, kb_ids, body.message) if kb_ids else []
    generation = GenerationRequest(
        question=body.message,
        history=tuple(Message(m.role, m.text) for m in body.history),
        passages=tuple(passages),
        grounded=bool(body.knowledge_base_ids),
        max_tokens=body.max_tokens,
    )
    return Prepared(
        org_id=body.org_id,
        request_id=request_id,
        chat_id=None,
        question=body.message,
        generation=generation,
        request_modality="text",
        passages=passages,
    )


# --- answering ------------------------------------------------------------------------------------

_CITED = re.compile(r"\[(\d{1,2})\]")


def _citations(passages: list[Passage], text: str, provider_name: str) -> list[Citation]:
    # The retrieval provider quotes every passage it was given; a model cites them as [n], and when
    # it names none, every passage it was grounded on is listed.
    used = {int(n) for n in _CITED.findall(text)} if provider_name != "retrieval" else set()
    chosen = [i for i in range(1, len(passages) + 1) if not used or i in used]
    return [
        Citation(
            index=i,
            knowledge_base_id=passages[i - 1].knowledge_base_id,
            document_id=passages[i - 1].document_id,
            title=passages[i - 1].title,
            chunk=passages[i - 1].chunk,
            score=round(passages[i - 1].score, 4),
            text=passages[i - 1].text,
        )
        for i in chosen
    ]


def _audio_event(text: str, voice: str | None, index: int) -> dict[str, Any]:
    audio = speech.synthesize(text, voice)
    return {
        "type": "audio",
        "audio": base64.b64encode(audio).decode(),
        "mimeType": speech.VOICE_MIME,
        "index": index,
        "text": text,
    }


def answer(prep: Prepared, model: Provider | None = None) -> Iterator[dict[str, Any]]:
    """The answer as stream events: text/audio as produced, then citations, image, usage, done."""
    model = model or provider()
    speak = prep.response_modality in ("audio", "text+audio")
    write_text = prep.response_modality in ("text", "text+audio")
    produced: list[str] = []
    pending = ""
    spoken = 0
    usage: Usage | None = None
    started = time.monotonic()
    try:
        for event in model.stream(prep.generation):
            if isinstance(event, TextDelta):
                produced.append(event.text)
                if write_text:
                    yield {"type": "text", "text": event.text}
                if speak:
                    sentences, pending = split_sentences(pending + event.text)
                    for sentence in sentences:
                        yield _audio_event(sentence, prep.voice, spoken)
                        spoken += 1
            else:
                usage = event
        if speak and pending.strip():
            yield _audio_event(pending.strip(), prep.voice, spoken)
    except (ProviderError, speech.SpeechError) as exc:
        yield from _failed(prep, "UPSTREAM_ERROR", str(exc), started)
        return
    except VerrifloError as exc:
        yield from _failed(prep, exc.code, exc.message, started)
        return
    except Exception as exc:  # noqa: BLE001 - headers are sent: the stream must still end with error, done
        logger.exception("ai.answer_crashed", extra={"error_type": type(exc).__name__})
        yield from _failed(prep, "INTERNAL_ERROR", "Something went wrong on our side.", started)
        return
    text = "".join(produced)
    usage = usage or Usage(0, 0, counted=True)
    for citation in _citations(prep.passages, text, getattr(model, "name", "")):
        yield {"type": "citation", "citation": citation.model_dump(mode="json")}
    spec = images.chart_spec(text, prep.question)
    picture = images.render_chart(spec) if spec is not None else None
    if spec is not None and picture is not None:
        yield {
            "type": "image",
            "image": base64.b64encode(picture).decode(),
            "mimeType": "image/png",
            "alt": spec.title or "chart of the figures in the answer",
        }
    try:
        credits = _finish(prep, text, usage, started)
    except VerrifloError as exc:  # e.g. Redis went away: the turn is not kept, and the caller is told
        yield from _failed(prep, exc.code, exc.message, started)
        return
    totals = TokenUsage(
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        total_tokens=usage.input_tokens + usage.output_tokens,
        credits=float(credits),
    )
    yield {"type": "usage", "usage": totals.model_dump(mode="json")}
    yield {"type": "done"}


def _failed(prep: Prepared, code: str, message: str, started: float) -> Iterator[dict[str, Any]]:
    elapsed_ms = round((time.monotonic() - started) * 1000)
    logger.warning("ai.answer_failed", extra={"error": code, "elapsed_ms": elapsed_ms})
    _record(prep, Usage(0, 0, counted=True), Decimal(0), "failed")
    yield {"type": "error", "error": code, "message": message}
    yield {"type": "done"}


def _record(prep: Prepared, usage: Usage, credits: Decimal, status: str) -> None:
    try:
        store.record_request(
            {
                "_id": prep.request_id,
                "orgId": prep.org_id,
                "chatId": prep.chat_id,
                "sessionKey": prep.chat_id or prep.request_id,
                "inputTokens": usage.input_tokens,
                "outputTokens": usage.output_tokens,
                "creditsMilli": to_milli(credits),
                "status": status,
                "model": usage.model,
                "requestModality": prep.request_modality,
                "responseModality": prep.response_modality,
                "createdAt": datetime.now(UTC),
            }
        )
    except VerrifloError:
        logger.warning("ai.record_failed", extra={"status": status})


def _finish(prep: Prepared, text: str, usage: Usage, started: float) -> Decimal:
    """After a complete answer: the history turn (both messages at once), the debit, the record."""
    settings = ai_settings()
    if prep.chat_id:
        stamp = datetime.now(UTC).isoformat()
        history.append(
            prep.org_id,
            prep.chat_id,
            [
                {"role": "user", "text": prep.question, "createdAt": stamp},
                {"role": "assistant", "text": text, "createdAt": stamp},
            ],
            settings.history_turns,
            settings.history_ttl_s,
            title=_shorten(prep.question, 80),
            preview=_shorten(text, 160),
            stamp=stamp,
        )
    credits = Decimal(0)
    try:
        credits = metering.meter(
            prep.org_id, "ai_agent", f"ai:{prep.request_id}", usage, {"chatId": prep.chat_id}
        )
    except VerrifloError:
        # The answer was delivered; the ledger write is retried by nobody, so say so loudly.
        logger.error(
            "ai.meter_failed",
            extra={"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens},
        )
    _record(prep, usage, credits, "completed")
    logger.info(
        "ai.answered",
        extra={
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "passages": len(prep.passages),
            "counted": usage.counted,
            "elapsed_ms": round((time.monotonic() - started) * 1000),
        },
    )
    return credits


def ndjson(events: Iterator[dict[str, Any]]) -> Iterator[bytes]:
    """Events framed as NDJSON: one compact JSON object per line."""
    import json

    for event in events:
        yield json.dumps(event, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"


def collect(prep: Prepared, model: Provider | None = None) -> ChatAnswer:
    """The whole answer at once (`POST /v1/ai-agent/chat`); a provider failure is a 502."""
    text: list[str] = []
    spoken: list[bytes] = []
    pictures: list[ImageOut] = []
    citations: list[Citation] = []
    usage = TokenUsage(input_tokens=0, output_tokens=0, total_tokens=0, credits=0)
    for event in answer(prep, model):
        kind = event["type"]
        if kind == "text":
            text.append(event["text"])
        elif kind == "audio":
            spoken.append(base64.b64decode(event["audio"]))
            if prep.response_modality == "audio":
                text.append(event["text"] + " ")
        elif kind == "citation":
            citations.append(Citation.model_validate(event["citation"]))
        elif kind == "image":
            pictures.append(ImageOut(image=event["image"], mime_type=event["mimeType"], alt=event["alt"]))
        elif kind == "usage":
            usage = TokenUsage.model_validate(event["usage"])
        elif kind == "error":
            raise UpstreamError(event["message"])
    return ChatAnswer(
        chat_id=prep.chat_id,
        text="".join(text).strip(),
        audio=base64.b64encode(b"".join(spoken)).decode() if spoken else None,
        audio_mime_type=speech.VOICE_MIME if spoken else None,
        images=pictures,
        citations=citations,
        transcript=prep.transcript,
        usage=usage,
        request_modality=prep.request_modality,
        response_modality=prep.response_modality,
    )


# --- chats ----------------------------------------------------------------------------------------


def _check_chat_id(chat_id: str) -> None:
    if not re.fullmatch(ID_PATTERN, chat_id):
        raise ValidationFailed("chatId may hold letters, digits, '-' and '_' (at most 100).")


def _shorten(text: str, limit: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


_CURSOR = re.compile(r"^(\d{1,16})\.([A-Za-z0-9_-]{1,100})$")


def list_chats(org: OrgContext, limit: int, cursor: str | None) -> ChatList:
    """The org's chats that have not expired, most recently updated first, a page at a time."""
    after = None
    if cursor is not None:
        found = _CURSOR.match(cursor)
        if not found:
            raise ValidationFailed("cursor must be the nextCursor of an earlier page.")
        after = (int(found.group(1)), found.group(2))
    rows, following = history.page(org.org_id, limit, after, ai_settings().history_ttl_s)
    return ChatList(
        items=[
            ChatSummary(
                chat_id=r["chatId"],
                title=r.get("title", ""),
                preview=r.get("preview", ""),
                turns=int(r.get("turns", 0)),
                created_at=r.get("createdAt") or r["updatedAt"],
                updated_at=r["updatedAt"],
            )
            for r in rows
        ],
        next_cursor=f"{following[0]}.{following[1]}" if following else None,
    )


def read_chat(org: OrgContext, chat_id: str) -> ChatHistory:
    """A chat of the org; another org's chatId is NotFound."""
    from verriflo.errors import NotFound

    _check_chat_id(chat_id)
    messages = history.read(org.org_id, chat_id)
    if not messages:
        raise NotFound(f"Chat '{chat_id}' was not found.")
    return ChatHistory(
        chat_id=chat_id,
        messages=[ChatMessage.model_validate(m) for m in messages],
        expires_in=max(history.ttl(org.org_id, chat_id), 0),
    )


def delete_chat(org: OrgContext, chat_id: str) -> ChatDeleted:
    """Forget a chat of the org; another org's chatId is NotFound."""
    from verriflo.errors import NotFound

    _check_chat_id(chat_id)
    if not history.delete(org.org_id, chat_id):
        raise NotFound(f"Chat '{chat_id}' was not found.")
    return ChatDeleted(chat_id=chat_id)


# --- usage ----------------------------------------------------------------------------------------


def _day(value: str | None, default: date, name: str) -> date:
    if not value:
        return default
    try:
        return date.fromisoformat(value[:10])
    except ValueError as exc:
        raise ValidationFailed(f"{name} must be a date like 2026-01-31.") from exc


def usage_summary(org: OrgContext, start_date: str | None, end_date: str | None) -> UsageSummary:
    """AI usage of the org between two dates (inclusive; default the last 30 days)."""
    today = datetime.now(UTC).date()
    end = _day(end_date, today, "endDate")
    start = _day(start_date, end - timedelta(days=29), "startDate")
    if start > end:
        raise ValidationFailed("startDate must not be after endDate.")
    if (end - start).days > 366:
        raise ValidationFailed("The period is limited to 366 days.")
    lower = datetime(start.year, start.month, start.day, tzinfo=UTC)
    upper = datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)
    agent = store.agent_totals(org.org_id, lower, upper)
    tutor = store.tutor_totals(org.org_id, lower, upper)
    agent_cost = from_milli(agent["creditsMilli"])
    tutor_cost = float(ai_tokens(tutor["inputTokens"], tutor["outputTokens"]))
    return UsageSummary(
        summary=UsageTotals(
            total_sessions=agent["sessions"] + tutor["interactions"],
            total_token_cost=round(agent_cost + tutor_cost, 3),
            total_input_tokens=agent["inputTokens"] + tutor["inputTokens"],
            total_output_tokens=agent["outputTokens"] + tutor["outputTokens"],
        ),
        breakdown=Breakdown(
            ai_agent=AgentBreakdown(
                sessions=agent["sessions"],
                requests=agent["requests"],
                failed_requests=agent["failed"],
                input_tokens=agent["inputTokens"],
                output_tokens=agent["outputTokens"],
                cost=round(agent_cost, 3),
            ),
            ai_tutor=TutorBreakdown(
                interactions=tutor["interactions"],
                students=tutor["students"],
                rooms=tutor["rooms"],
                failed_interactions=tutor["failed"],
                input_tokens=tutor["inputTokens"],
                output_tokens=tutor["outputTokens"],
                cost=round(tutor_cost, 3),
            ),
        ),
        start_date=start,
        end_date=end,
    )


# --- knowledge bases ------------------------------------------------------------------------------


def add_document(org: OrgContext, kb_id: str, body: AddDocument) -> knowledge.Document:
    """Ingest a document into one of the org's knowledge bases (in the request, or queued)."""
    content = document_bytes(
        body.content, body.content_base64, body.content_type, ai_settings().max_document_bytes
    )
    return knowledge.add_document(org.org_id, kb_id, body.title, content, body.content_type)
