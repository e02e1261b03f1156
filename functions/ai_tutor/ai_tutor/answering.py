"""Answering a student's question: check it, gather the class context, stream the answer as
events, then record the exchange and meter it.

Everything that can reject a question (bad input, unknown room, a student not in the class, a
finished class, the tutor switched off, no credits, undecodable audio) happens in `prepare`, before
any model call and before the first byte of a stream. `answer` then yields events; a provider
failure mid-stream becomes an error event (then the end of the stream) and the exchange is recorded
as failed. The model interface, retrieval, speech and metering are the AI package's.
"""

from __future__ import annotations

import base64
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from verriflo.errors import (
    Forbidden,
    PayloadTooLarge,
    UnsupportedMediaType,
    UpstreamError,
    ValidationFailed,
    VerrifloError,
)
from verriflo.ledger import to_milli
from verriflo.observability import logger
from verriflo.orgs import now
from verriflo_ai import metering, outcome, speech
from verriflo_ai.providers import (
    GenerationRequest,
    Provider,
    Sentence,
    TextDelta,
    Usage,
    provider,
    with_sentences,
)
from verriflo_ai.settings import ai_settings
from verriflo_ai.uploads import decode_base64

from ai_tutor import context, store
from ai_tutor.config import tutor_settings
from ai_tutor.models import (
    Modality,
    Mode,
    TutorAnsweredEvent,
    TutorAudioEvent,
    TutorChatAnswer,
    TutorChatRequest,
    TutorErrorEvent,
    TutorSource,
    TutorStreamEvent,
    TutorTextEvent,
    TutorTokenUsage,
    TutorTranscriptEvent,
)

STUDENT = "STUDENT"


@dataclass
class Asker:
    """Who asks: an org's student in one of its rooms (from the org key and body, or a room credential)."""

    org_id: str
    room_id: str
    student_uid: str


@dataclass
class Question:
    """What was asked, before checks: text and/or base64 audio, and the wanted answer form."""

    text: str | None
    audio: str | None
    response_modality: Modality


@dataclass
class Prepared:
    """A checked question with its context, ready to be answered."""

    asker: Asker
    interaction_id: str
    question: str
    mode: Mode
    generation: GenerationRequest
    sources: list[TutorSource]
    grounded: bool
    request_modality: str
    response_modality: Modality
    transcript: str | None = None
    vector: Any = None
    extra: dict[str, Any] = field(default_factory=dict)


# --- checks -----------------------------------------------------------------------------------------


def decode_audio_field(value: str) -> bytes:
    """The base64 `audio` field as bytes: 413 over the limit, 400 when not base64 or not audio."""
    data = decode_base64(value, "audio", ai_settings().max_audio_bytes)
    try:
        speech.sniff_audio(data)
    except UnsupportedMediaType as exc:
        raise ValidationFailed("audio must be WAV, MP3 or WebM/Opus.") from exc
    return data


def check_text(text: str | None) -> str:
    """The question text trimmed; 413 when longer than allowed."""
    value = (text or "").strip()
    limit = tutor_settings().max_text_chars
    if len(value) > limit:
        raise PayloadTooLarge(f"text is longer than {limit} characters.")
    return value


def check_student(asker: Asker) -> store.Room:
    """The room, if `asker` is a student of an active room of the org: connected to it, or holding a
    join token we issued for it (a backend may ask before the browser connects); never once removed."""
    room = store.require_room(asker.org_id, asker.room_id)
    if room.ended:
        raise Forbidden(f"The class in room '{asker.room_id}' has ended; the tutor answers during class.")
    grant = store.join_grant(asker.org_id, asker.room_id, asker.student_uid)
    if grant is not None and grant.removed_at is not None:
        raise Forbidden(f"'{asker.student_uid}' was removed from room '{asker.room_id}'.")
    role = store.connected_role(asker.org_id, asker.room_id, asker.student_uid)
    if role is None and grant is not None and grant.expires_at is not None and grant.expires_at > now():
        role = grant.role  # not connected (yet): their token's role
    if role is None:
        raise Forbidden(f"'{asker.student_uid}' is not in room '{asker.room_id}'.")
    if role != STUDENT:
        raise Forbidden("Only students of the room may ask the tutor.")
    return room


def _org_matches(org_id: str, organization_id: str | None) -> None:
    if organization_id is not None and organization_id != org_id:
        raise Forbidden("organizationId does not match the organisation of the key.")


def request_modality(text: str, audio: bytes | None) -> str:
    """`text`, `audio` or `text+audio`."""
    return "+".join(k for k, v in (("text", text), ("audio", audio)) if v)


def prepare(asker: Asker, asked: Question, request_id: str) -> Prepared:
    """Check a question and gather its context; every rejection happens here, before any model call."""
    text = check_text(asked.text)
    audio = decode_audio_field(asked.audio) if asked.audio else None
    if not text and audio is None:
        raise ValidationFailed("Invalid value for 'text': give a non-empty text or audio")
    room = check_student(asker)
    settings = context.room_settings(asker.org_id, asker.room_id)
    if not settings.enabled:
        raise Forbidden("The teacher has switched the tutor off for this room.")
    # The room's and the student's caps (GET/PUT /v1/billing/limits) bound what a class can spend.
    metering.require_credits(asker.org_id, room_id=asker.room_id, student_id=asker.student_uid)
    transcript = None
    if audio is not None:
        transcript = speech.transcribe(audio).text.strip()
        if not transcript and not text:
            raise ValidationFailed("No speech was recognised in the audio.")
    question = " ".join(p for p in (text, transcript) if p)
    gathered = context.gather(asker, room, settings, question)
    return Prepared(
        asker=asker,
        interaction_id=f"ti_{uuid.uuid5(uuid.NAMESPACE_URL, request_id).hex}",
        question=question,
        mode=settings.mode,
        generation=gathered.generation,
        sources=gathered.sources,
        grounded=gathered.grounded,
        request_modality=request_modality(text, audio),
        response_modality=asked.response_modality,
        transcript=transcript,
        vector=gathered.vector,
    )


def prepare_chat(org_id: str, body: TutorChatRequest, request_id: str) -> Prepared:
    """`POST /v1/ai-tutor/chat[/stream]` with the org key: the body names the room and the student."""
    _org_matches(org_id, body.organization_id)
    return prepare(
        Asker(org_id, body.room_id, body.student_uid),
        Question(body.text, body.audio, body.response_modality),
        request_id,
    )


# --- answering --------------------------------------------------------------------------------------


def _audio(text: str) -> TutorAudioEvent:
    audio = base64.b64encode(speech.synthesize(text)).decode()
    return TutorAudioEvent(audio=audio, mime_type=speech.VOICE_MIME, spoken=text)


def answer(prep: Prepared, model: Provider | None = None) -> Iterator[TutorStreamEvent]:
    """The answer as events: the transcript of a spoken question, text pieces (and speech) as
    produced, then the usage with the sources.

    A failure mid-stream yields an error event instead of the usage event and records the exchange
    as failed; nothing is charged for it.
    """
    model = model or provider()
    if prep.transcript is not None:
        yield TutorTranscriptEvent(transcript=prep.transcript)
    write = prep.response_modality in ("text", "both")
    speak = prep.response_modality in ("audio", "both")
    produced: list[str] = []
    usage: Usage | None = None
    started = time.monotonic()
    try:
        for event in with_sentences(model.stream(prep.generation), speak):
            if isinstance(event, TextDelta):
                produced.append(event.text)
                if write:
                    yield TutorTextEvent(text=event.text)
            elif isinstance(event, Sentence):
                yield _audio(event.text)
            else:
                usage = event
    except Exception as exc:  # noqa: BLE001 - headers are sent: the stream must still end with error, [DONE]
        yield _failed(prep, "".join(produced), *outcome.failure(exc), started)
        return
    usage = usage or Usage(0, 0, counted=True)
    credits = _finish(prep, "".join(produced), usage, getattr(model, "name", ""), started)
    yield TutorAnsweredEvent(
        usage=TutorTokenUsage(
            input_tokens=usage.input_tokens, output_tokens=usage.output_tokens, credits=float(credits)
        ),
        sources=prep.sources,
        grounded=prep.grounded,
        interaction_id=prep.interaction_id,
    )


def _interaction(
    prep: Prepared,
    answer_text: str,
    status: Literal["completed", "failed"],
    usage: Usage,
    credits: Decimal,
    error: str | None = None,
) -> store.Interaction:
    return store.Interaction(
        id=prep.interaction_id,
        org_id=prep.asker.org_id,
        room_id=prep.asker.room_id,
        student_uid=prep.asker.student_uid,
        question=prep.question,
        answer=answer_text,
        status=status,
        mode=prep.mode,
        grounded=prep.grounded,
        sources=[s.model_dump(mode="json", exclude={"text"}) for s in prep.sources],
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        credits_milli=to_milli(credits),
        model=usage.model,
        request_modality=prep.request_modality,
        response_modality=prep.response_modality,
        vector=prep.vector.tobytes() if prep.vector is not None else None,
        created_at=now(),
        error=error,
    )


def _failed(prep: Prepared, partial: str, code: str, message: str, started: float) -> TutorErrorEvent:
    logger.warning(
        "tutor.answer_failed",
        extra={
            "error": code,
            "room_id": prep.asker.room_id,
            "elapsed_ms": round((time.monotonic() - started) * 1000),
        },
    )
    failed = _interaction(prep, partial, "failed", Usage(0, 0, counted=True), Decimal(0), error=code)
    try:
        store.insert_interaction(failed)
    except VerrifloError:
        logger.error("tutor.record_failed", extra={"status": "failed"})
    return TutorErrorEvent(error=code, message=message)


def _finish(prep: Prepared, text: str, usage: Usage, model_name: str, started: float) -> Decimal:
    """After a complete answer: the debit (once per interaction id), then the record."""
    credits = metering.meter(
        prep.asker.org_id,
        "ai_tutor",
        f"tutor:{prep.interaction_id}",
        usage,
        {"studentUid": prep.asker.student_uid},
        room_id=prep.asker.room_id,
        student_id=prep.asker.student_uid,
        delivered=True,
    )
    try:
        store.insert_interaction(_interaction(prep, text, "completed", usage, credits))
    except VerrifloError:
        logger.error("tutor.record_failed", extra={"status": "completed"})
    logger.info(
        "tutor.answered",
        extra={
            "room_id": prep.asker.room_id,
            "mode": prep.mode,
            "model": model_name,
            "sources": len(prep.sources),
            "grounded": prep.grounded,
            "input_tokens": usage.input_tokens,
            "output_tokens": usage.output_tokens,
            "elapsed_ms": round((time.monotonic() - started) * 1000),
        },
    )
    return credits


def sse(events: Iterator[TutorStreamEvent]) -> Iterator[bytes]:
    """Events framed as Server-Sent Events (API.md): `data: {...}` blocks, then `data: [DONE]`."""
    import json

    for event in events:
        data = json.dumps(event.model_dump(mode="json"), separators=(",", ":"), ensure_ascii=False)
        yield b"data: " + data.encode() + b"\n\n"
    # Also after an error event: clients wait for [DONE] to close the stream.
    yield b"data: [DONE]\n\n"


def collect(prep: Prepared, model: Provider | None = None) -> TutorChatAnswer:
    """The whole answer at once (`POST /v1/ai-tutor/chat`); a provider failure is a 502."""
    text: list[str] = []
    said: list[str] = []
    spoken: list[bytes] = []
    transcript: str | None = None
    usage = TutorTokenUsage(input_tokens=0, output_tokens=0)
    for event in answer(prep, model):
        if isinstance(event, TutorErrorEvent):
            raise UpstreamError(event.message)
        if isinstance(event, TutorTranscriptEvent):
            transcript = event.transcript
        elif isinstance(event, TutorAudioEvent):
            spoken.append(base64.b64decode(event.audio))
            said.append(event.spoken)
        elif isinstance(event, TutorAnsweredEvent):
            usage = event.usage
        else:
            text.append(event.text)
    if prep.response_modality == "audio":
        text = [" ".join(said)]
    return TutorChatAnswer(
        text="".join(text).strip(),
        audio=base64.b64encode(b"".join(spoken)).decode() if spoken else None,
        usage=usage,
        request_modality=prep.request_modality,  # type: ignore[arg-type]
        response_modality=prep.response_modality,
        transcript=transcript,
        sources=prep.sources,
        grounded=prep.grounded,
        interaction_id=prep.interaction_id,
    )
