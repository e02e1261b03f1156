"""Answering a chat turn of the AI API: check it, gather its context, stream the answer as NDJSON-ready
events, then keep the history and meter the tokens.

Everything that can reject a request (bad base64, unsupported type, oversized media, unknown
knowledge base, no credits, Redis down) happens in `prepare_chat`/`prepare_generate`, before any
model is called and before a byte of the stream is sent. `answer` then yields events; a provider
failure mid-stream becomes an `error` event followed by `done`, and nothing is written to the history.
"""

from __future__ import annotations

import base64
import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Literal

from verriflo.auth import OrgContext
from verriflo.errors import PayloadTooLarge, UpstreamError, ValidationFailed, VerrifloError
from verriflo.ledger import to_milli
from verriflo.observability import logger
from verriflo_ai import images, knowledge, metering, outcome, speech, video_search
from verriflo_ai.providers import (
    GenerationRequest,
    Message,
    Passage,
    Provider,
    Sentence,
    TextDelta,
    Usage,
    provider,
    with_sentences,
)
from verriflo_ai.settings import ai_settings
from verriflo_ai.uploads import decode_base64

from ai_agent import history, store
from ai_agent.chats import new_chat_id, shorten
from ai_agent.models import (
    AudioEvent,
    ChatAnswer,
    ChatEvent,
    ChatRequest,
    Citation,
    CitationEvent,
    DoneEvent,
    ErrorEvent,
    GenerateRequest,
    ImageEvent,
    ImageOut,
    Modality,
    StreamEvent,
    TextEvent,
    TokenUsage,
    TranscriptEvent,
    UsageEvent,
)

# --- preparing a request (everything that may reject it) -----------------------------------------


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
    started_chat: bool = False  # no chatId was sent: this turn starts the chat `chat_id`
    image_text: str = ""  # what an attached image showed

    @property
    def asked(self) -> str:
        """The user's turn as the history keeps it: the words, and what the image showed."""
        if not self.image_text or self.image_text == self.question:
            return self.question
        return f"{self.question}\n(Text of the attached image: {self.image_text})"


def _request_modality(body: ChatRequest) -> str:
    kinds = [k for k, v in (("text", body.message), ("audio", body.audio), ("image", body.image)) if v]
    return "+".join(kinds)


def _history_messages(org_id: str, chat_id: str | None) -> tuple[Message, ...]:
    if not chat_id:
        return ()
    keep = ai_settings().history_context_turns
    stored = history.read(org_id, chat_id)
    return tuple(Message(m.role, m.text) for m in stored[-keep:]) if keep else ()


def prepare_chat(org: OrgContext, body: ChatRequest, request_id: str) -> Prepared:
    """Check and enrich a chat request; raises the right 4xx/5xx before any model work."""
    settings = ai_settings()
    message = (body.message or "").strip()
    if len(message) > settings.max_message_chars:
        raise PayloadTooLarge(f"message is longer than {settings.max_message_chars} characters.")
    audio = decode_base64(body.audio, "audio", settings.max_audio_bytes) if body.audio else None
    if audio is not None:
        speech.sniff_audio(audio)
    image = decode_base64(body.image, "image", settings.max_image_bytes) if body.image else None
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
    said = " ".join(p for p in (message, transcript) if p)
    seen = ""
    note = ""
    if image is not None:
        seen = images.read_image(image, mime or "")
        note = (
            f"Text read from the attached image: {seen}"
            if seen
            else "An image was attached; no text could be read from it."
        )
    question = said or seen
    kb_ids = body.knowledge_base_ids
    # The words and the image's text search together: "what does this mean?" finds nothing alone,
    # and the image's text alone misses what the student asks about it.
    query = " ".join(p for p in (said, seen) if p)
    passages = knowledge.search(org.org_id, kb_ids, query) if kb_ids else []
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
        chat_id=body.chat_id or new_chat_id(),
        question=question,
        generation=generation,
        request_modality=_request_modality(body),
        response_modality=body.response_modality,
        voice=voice,
        transcript=transcript,
        passages=passages,
        started_chat=body.chat_id is None,
        image_text=seen,
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


def _citations(org_id: str, passages: list[Passage], text: str, provider_name: str) -> list[Citation]:
    # The retrieval provider quotes every passage it was given; a model cites them as [n], and when
    # it names none, every passage it was grounded on is listed.
    used = {int(n) for n in _CITED.findall(text)} if provider_name != "retrieval" else set()
    chosen = [i for i in range(1, len(passages) + 1) if not used or i in used]
    moments = [
        (p.video_id, p.start_s) for i in chosen if (p := passages[i - 1]).video_id and p.start_s is not None
    ]
    urls = video_search.moment_urls(org_id, moments) if moments else {}
    return [
        Citation(
            index=i,
            knowledge_base_id=passages[i - 1].knowledge_base_id,
            document_id=passages[i - 1].document_id,
            title=passages[i - 1].title,
            chunk=passages[i - 1].chunk,
            page=passages[i - 1].page,
            score=round(passages[i - 1].score, 4),
            text=passages[i - 1].text,
            video_id=passages[i - 1].video_id,
            start_s=passages[i - 1].start_s,
            end_s=passages[i - 1].end_s,
            playback_url=urls.get((passages[i - 1].video_id, passages[i - 1].start_s)),
        )
        for i in chosen
    ]


def _audio_event(text: str, voice: str | None, index: int) -> AudioEvent:
    audio = speech.synthesize(text, voice)
    return AudioEvent(
        audio=base64.b64encode(audio).decode(), mime_type=speech.VOICE_MIME, index=index, text=text
    )


def answer(prep: Prepared, model: Provider | None = None) -> Iterator[StreamEvent]:
    """The answer as stream events: the new chat's id and the transcript when there are any, text/audio
    as produced, then citations, image, usage, done."""
    model = model or provider()
    if prep.started_chat and prep.chat_id:
        yield ChatEvent(chat_id=prep.chat_id)
    if prep.transcript is not None:
        yield TranscriptEvent(transcript=prep.transcript)
    speak = prep.response_modality in ("audio", "text+audio")
    write_text = prep.response_modality in ("text", "text+audio")
    produced: list[str] = []
    spoken = 0
    usage: Usage | None = None
    started = time.monotonic()
    try:
        for event in with_sentences(model.stream(prep.generation), speak):
            if isinstance(event, TextDelta):
                produced.append(event.text)
                if write_text:
                    yield TextEvent(text=event.text)
            elif isinstance(event, Sentence):
                yield _audio_event(event.text, prep.voice, spoken)
                spoken += 1
            else:
                usage = event
    except Exception as exc:  # noqa: BLE001 - headers are sent: the stream must still end with error, done
        yield from _failed(prep, *outcome.failure(exc), started)
        return
    text = "".join(produced)
    usage = usage or Usage(0, 0, counted=True)
    for citation in _citations(prep.org_id, prep.passages, text, getattr(model, "name", "")):
        yield CitationEvent(citation=citation)
    spec = images.chart_spec(text, prep.question)
    picture = images.render_chart(spec) if spec is not None else None
    if spec is not None and picture is not None:
        yield ImageEvent(
            image=base64.b64encode(picture).decode(),
            mime_type="image/png",
            alt=spec.title or "chart of the figures in the answer",
        )
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
    yield UsageEvent(usage=totals)
    yield DoneEvent()


def _failed(prep: Prepared, code: str, message: str, started: float) -> Iterator[StreamEvent]:
    elapsed_ms = round((time.monotonic() - started) * 1000)
    logger.warning("ai.answer_failed", extra={"error": code, "elapsed_ms": elapsed_ms})
    _record(prep, Usage(0, 0, counted=True), Decimal(0), "failed")
    yield ErrorEvent(error=code, message=message)
    yield DoneEvent()


def _record(prep: Prepared, usage: Usage, credits: Decimal, status: Literal["completed", "failed"]) -> None:
    try:
        store.record_request(
            store.AiRequest(
                id=prep.request_id,
                org_id=prep.org_id,
                chat_id=prep.chat_id,
                session_key=prep.chat_id or prep.request_id,
                input_tokens=usage.input_tokens,
                output_tokens=usage.output_tokens,
                credits_milli=to_milli(credits),
                status=status,
                model=usage.model,
                request_modality=prep.request_modality,
                response_modality=prep.response_modality,
                created_at=datetime.now(UTC),
            )
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
                history.StoredMessage("user", prep.asked, stamp),
                # as the whole answer gives it: a stream's text may end in the model's newline
                history.StoredMessage("assistant", text.strip(), stamp),
            ],
            settings.history_turns,
            settings.history_ttl_s,
            title=shorten(prep.question, 80),
            preview=shorten(text, 160),
            stamp=stamp,
        )
    credits = metering.meter(
        prep.org_id, "ai_agent", f"ai:{prep.request_id}", usage, {"chatId": prep.chat_id}, delivered=True
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


def ndjson(events: Iterator[StreamEvent]) -> Iterator[bytes]:
    """Events framed as NDJSON: one compact JSON object per line."""
    for event in events:
        line = json.dumps(event.model_dump(mode="json"), separators=(",", ":"), ensure_ascii=False)
        yield line.encode() + b"\n"


def collect(prep: Prepared, model: Provider | None = None) -> ChatAnswer:
    """The whole answer at once (`POST /v1/ai-agent/chat`); a provider failure is a 502."""
    text: list[str] = []
    spoken: list[bytes] = []
    pictures: list[ImageOut] = []
    citations: list[Citation] = []
    transcript: str | None = None
    usage = TokenUsage(input_tokens=0, output_tokens=0, total_tokens=0, credits=0)
    for event in answer(prep, model):
        if isinstance(event, TextEvent):
            text.append(event.text)
        elif isinstance(event, TranscriptEvent):
            transcript = event.transcript
        elif isinstance(event, AudioEvent):
            spoken.append(base64.b64decode(event.audio))
            if prep.response_modality == "audio":
                text.append(event.text + " ")
        elif isinstance(event, CitationEvent):
            citations.append(event.citation)
        elif isinstance(event, ImageEvent):
            pictures.append(ImageOut(image=event.image, mime_type=event.mime_type, alt=event.alt))
        elif isinstance(event, UsageEvent):
            usage = event.usage
        elif isinstance(event, ErrorEvent):
            raise UpstreamError(event.message)
    return ChatAnswer(
        chat_id=prep.chat_id,
        text="".join(text).strip(),
        audio=base64.b64encode(b"".join(spoken)).decode() if spoken else None,
        audio_mime_type=speech.VOICE_MIME if spoken else None,
        images=pictures,
        citations=citations,
        transcript=transcript,
        usage=usage,
        request_modality=prep.request_modality,
        response_modality=prep.response_modality,
    )
