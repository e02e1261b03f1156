"""Request and response models of the AI tutor, with the fields and enums of API.md."""

# No `from __future__ import annotations`: pydantic would evaluate each string annotation as it
# creates every model class below, a cost every cold start pays.

from datetime import datetime
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from verriflo.models import ApiModel, StrictApiModel
from verriflo_ai.uploads import DocumentUpload

Modality = Literal["text", "audio", "both"]
Mode = Literal["hints", "explain"]
MaterialKind = Literal["notes", "slides"]
RoomIdText = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_-]+$")]
Uid = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\s/]+$")]


class TutorChatRequest(StrictApiModel):
    """A student's question during class (API.md): text or base64 audio, answered as text and/or speech."""

    room_id: RoomIdText
    student_uid: Uid
    organization_id: str | None = Field(
        default=None, max_length=100, description="the caller's org id; must match the key when given"
    )
    text: str | None = Field(default=None, description="the question")
    audio: str | None = Field(default=None, description="base64 WAV, MP3 or WebM/Opus")
    response_modality: Modality = "text"

    @model_validator(mode="after")
    def _something_to_answer(self) -> Self:
        if not ((self.text and self.text.strip()) or self.audio):
            raise ValueError("give a non-empty text or audio")
        return self


class TutorClassroomChat(StrictApiModel):
    """A question from the classroom page: room, student and org come from its room credential."""

    text: str | None = None
    audio: str | None = None
    response_modality: Modality = "text"

    @model_validator(mode="after")
    def _something_to_answer(self) -> Self:
        if not ((self.text and self.text.strip()) or self.audio):
            raise ValueError("give a non-empty text or audio")
        return self


class TutorSource(ApiModel):
    """Where part of an answer came from: class material, the room itself, or an earlier exchange."""

    index: int
    kind: Literal["material", "room", "earlier"]
    title: str
    document_id: str | None = None
    chunk: int | None = None
    score: float
    text: str


class TutorTokenUsage(ApiModel):
    """`usage` of API.md (plus what it cost)."""

    input_tokens: int
    output_tokens: int
    credits: float = 0.0


# --- the streamed answer: one event per Server-Sent Event (the buffered answer collects the same) ----


class TutorTextEvent(ApiModel):
    """A piece of the answer, as it is produced."""

    text: str
    usage: None = None


class TutorTranscriptEvent(ApiModel):
    """What the student's audio said, before the answer (the whole answer's `transcript`)."""

    text: str = ""
    transcript: str
    usage: None = None


class TutorAudioEvent(ApiModel):
    """Speech for one sentence of the answer (responseModality `audio` or `both`)."""

    text: str = ""
    audio: str = Field(description="base64 MP3")
    mime_type: str
    spoken: str = Field(description="the sentence spoken")
    usage: None = None


class TutorAnsweredEvent(ApiModel):
    """The answer is complete: its usage, its sources, then `[DONE]`."""

    usage: TutorTokenUsage
    sources: list[TutorSource]
    grounded: bool
    interaction_id: str


class TutorErrorEvent(ApiModel):
    """The answer failed mid-stream (instead of the usage event); the exchange is recorded as failed."""

    text: str = ""
    usage: None = None
    error: str = Field(description="the error code, as in the envelope")
    message: str


TutorStreamEvent = (
    TutorTranscriptEvent | TutorTextEvent | TutorAudioEvent | TutorAnsweredEvent | TutorErrorEvent
)
TUTOR_STREAM_EVENTS: list[type[ApiModel]] = [
    TutorTranscriptEvent,
    TutorTextEvent,
    TutorAudioEvent,
    TutorAnsweredEvent,
    TutorErrorEvent,
]


class TutorChatAnswer(ApiModel):
    """`POST /v1/ai-tutor/chat` (API.md): the whole answer."""

    text: str
    audio: str | None = Field(default=None, description="base64 MP3 when speech was asked for")
    usage: TutorTokenUsage
    request_modality: Literal["text", "audio", "text+audio"]
    response_modality: Modality
    transcript: str | None = Field(default=None, description="what the audio said")
    sources: list[TutorSource] = Field(default_factory=list)
    grounded: bool = Field(description="false when nothing in the class context matched the question")
    interaction_id: str


class TutorRoomSettings(ApiModel):
    """The tutor's settings for one room."""

    room_id: str
    enabled: bool
    mode: Mode
    topic: str | None = None
    updated_at: datetime | None = None
    kb_id: str | None = Field(default=None, exclude=True)  # the room's material base (never sent)


class TutorOrgSettings(ApiModel):
    """The org's tutor defaults: what a room uses until its teacher changes it."""

    enabled: bool
    mode: Mode
    topic: str | None = None
    updated_at: datetime | None = None


class TutorUpdateRoomSettings(StrictApiModel):
    """What the teacher may change: the switch, the pedagogy and the class topic."""

    enabled: bool | None = None
    mode: Mode | None = Field(
        default=None, description="`hints`: step by step, no final answers; `explain`: fully"
    )
    topic: str | None = Field(default=None, max_length=300)


class TutorAddMaterial(DocumentUpload):
    """Teacher material for a room: notes or slides, as text (`content`) or a PDF (`contentBase64`)."""

    kind: MaterialKind = "notes"


class TutorMaterial(ApiModel):
    """A document of the room's material."""

    material_id: str
    room_id: str
    title: str
    kind: MaterialKind
    content_type: str
    size_bytes: int
    chunk_count: int
    status: Literal["processing", "ready", "failed"] = Field(
        default="ready", description="`processing` while the queue embeds it; used once `ready`"
    )
    embedded_chunks: int = 0
    error: str | None = Field(default=None, description="why it `failed`")
    created_at: datetime


class TutorMaterialList(ApiModel):
    """The room's material, newest first."""

    room_id: str
    material: list[TutorMaterial]


class TutorExchange(ApiModel):
    """One question and its answer, as the teacher reads it."""

    interaction_id: str
    student_uid: str
    question: str
    answer: str
    status: Literal["completed", "failed"]
    mode: Mode
    sources: list[dict[str, Any]] = Field(default_factory=list)
    error: str | None = None
    input_tokens: int
    output_tokens: int
    created_at: datetime


class TutorExchangeList(ApiModel):
    """Exchanges of a room, newest first; pass `nextBefore` as `before` for the next page."""

    room_id: str
    exchanges: list[TutorExchange]
    next_before: datetime | None = None


class TutorTopQuery(ApiModel):
    """A question students asked (similar ones grouped), the answer given, and how often."""

    question: str
    answer: str
    frequency: int


class TutorSummary(ApiModel):
    """`GET /v1/ai-tutor/summary/:roomId` (API.md: `summary`, `topQueries`) and its state."""

    room_id: str
    state: Literal["ready", "pending", "class_in_progress"]
    summary: str | None = None
    top_queries: list[TutorTopQuery] = Field(default_factory=list)
    method: Literal["extractive", "generated"] | None = None
    interactions: int = 0
    students: int = 0
    created_at: datetime | None = None
    message: str | None = None


class TutorRoomUsage(ApiModel):
    """`GET /v1/ai-tutor/usage/:roomId`: interactions, students, tokens, cost (credits)."""

    room_id: str
    interactions: int
    completed_interactions: int
    failed_interactions: int
    students: int
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost: float = Field(description="credits charged to the ledger for this room's tutor")


class TutorClassroomState(ApiModel):
    """What the classroom page's tutor panel shows: the switch, the mode, and the exchanges it may read."""

    room_id: str
    title: str
    role: str
    enabled: bool
    mode: Mode
    exchanges: list[TutorExchange]


class TutorSummarizeRequest(StrictApiModel):
    """Internal: build a room's summary now (X-Dispatch-Secret)."""

    org_id: str = Field(min_length=1, max_length=100)
    room_id: RoomIdText


class TutorChatReply(BaseModel):
    """`POST /v1/ai-tutor/chat`: API.md lists the answer's fields beside `success`, and the house
    envelope puts them in `data`; both are present, with the same values, so either kind of client works."""

    model_config = ConfigDict(defer_build=True, populate_by_name=True)

    success: Literal[True] = True
    data: TutorChatAnswer
    text: str
    audio: str | None = None
    usage: TutorTokenUsage
    request_modality: str = Field(alias="requestModality")
    response_modality: Modality = Field(alias="responseModality")

    @classmethod
    def of(cls, answer: TutorChatAnswer) -> Self:
        """The reply around one answer."""
        return cls(
            data=answer,
            text=answer.text,
            audio=answer.audio,
            usage=answer.usage,
            request_modality=answer.request_modality,
            response_modality=answer.response_modality,
        )


class TutorMaterialDeleted(ApiModel):
    """A document left the room's material."""

    material_id: str
    deleted: bool = True
