"""Request and answer models of the AI API (API.md), buffered and streamed routes alike."""

# No `from __future__ import annotations`: pydantic would evaluate each string annotation as it
# creates every model class below, a cost every cold start pays.

from datetime import date, datetime
from typing import Literal, Self

from pydantic import Field, model_validator
from verriflo.models import ApiModel, StrictApiModel
from verriflo_ai.uploads import DocumentUpload

NDJSON = "application/x-ndjson"
ID_PATTERN = r"^[A-Za-z0-9_-]{1,100}$"
Modality = Literal["text", "audio", "text+audio"]


class ChatRequest(StrictApiModel):
    """A chat turn: text, voice or an image in; text and/or speech out (API.md)."""

    chat_id: str | None = Field(
        default=None,
        pattern=ID_PATTERN,
        description="keeps history across turns; omit it to start a new chat (its chatId comes back)",
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
    page: int | None = Field(default=None, description="the PDF page the passage is on (null for text)")
    score: float
    text: str
    video_id: str | None = Field(default=None, description="a video's moment: the video (null for documents)")
    start_s: float | None = Field(default=None, description="where in the video it starts, in seconds")
    end_s: float | None = Field(default=None, description="where its passage ends, in seconds")
    playback_url: str | None = Field(
        default=None, description="the signed master playlist starting at `startS` (`#t=` fragment)"
    )


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


# --- the streamed answer: one event per NDJSON line (the buffered answer collects the same events) ---


class _Event(ApiModel):
    type: str  # first on every line, whatever the event's other fields are


class ChatEvent(_Event):
    """First line when the request started a new chat (no `chatId` sent): pass `chatId` to continue it."""

    type: Literal["chat"] = "chat"
    chat_id: str


class TranscriptEvent(_Event):
    """What the audio said (when audio was sent), before the answer: the buffered answer's `transcript`."""

    type: Literal["transcript"] = "transcript"
    transcript: str


class TextEvent(_Event):
    """A piece of the answer, as it is produced."""

    type: Literal["text"] = "text"
    text: str


class AudioEvent(_Event):
    """Speech for one sentence of the answer."""

    type: Literal["audio"] = "audio"
    audio: str = Field(description="base64 MP3")
    mime_type: str
    index: int = Field(description="the sentence's place among the spoken ones, from 0")
    text: str = Field(description="the sentence spoken")


class CitationEvent(_Event):
    """A passage the answer used."""

    type: Literal["citation"] = "citation"
    citation: Citation


class ImageEvent(ImageOut, _Event):
    """A chart of the figures in the answer."""

    type: Literal["image"] = "image"


class UsageEvent(_Event):
    """The tokens of the answer and what they cost."""

    type: Literal["usage"] = "usage"
    usage: TokenUsage


class ErrorEvent(_Event):
    """The answer failed mid-stream: nothing is kept (`done` follows)."""

    type: Literal["error"] = "error"
    error: str = Field(description="the error code, as in the envelope")
    message: str


class DoneEvent(_Event):
    """Always the last line."""

    type: Literal["done"] = "done"


StreamEvent = (
    ChatEvent
    | TranscriptEvent
    | TextEvent
    | AudioEvent
    | CitationEvent
    | ImageEvent
    | UsageEvent
    | ErrorEvent
    | DoneEvent
)
STREAM_EVENTS: list[type[ApiModel]] = [
    ChatEvent,
    TranscriptEvent,
    TextEvent,
    AudioEvent,
    CitationEvent,
    ImageEvent,
    UsageEvent,
    ErrorEvent,
    DoneEvent,
]


class ChatAnswer(ApiModel):
    """The whole answer of `POST /v1/ai-agent/chat`."""

    chat_id: str | None = Field(description="the chat this turn belongs to (a new one when none was sent)")
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


class AddDocument(DocumentUpload):
    """A document: `content` as text, or `contentBase64` for PDFs and other binary files."""


class Deleted(ApiModel):
    """Something was deleted."""

    id: str
    deleted: bool = True


class AddKnowledgeBaseVideo(StrictApiModel):
    """A video or class recording of the org to draw on (by its `videoId`)."""

    video_id: str = Field(min_length=1, max_length=100)
