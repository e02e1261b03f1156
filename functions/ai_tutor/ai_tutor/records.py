"""The AI tutor's records as stored: its own (settings, interactions, summaries) and what it reads of
the rooms function's (a room, a join grant). Only `ai_tutor.store` builds them from documents."""

# No `from __future__ import annotations`: pydantic would evaluate each string annotation as it
# creates the record classes below, a cost every cold start pays.

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from ai_tutor.models import TutorTopQuery  # stored as answered: one shape

_RECORD = ConfigDict(defer_build=True, populate_by_name=True, extra="ignore")


class Room(BaseModel):
    """The rooms function's record of a room, as far as the tutor reads it."""

    model_config = _RECORD

    room_id: str = Field(alias="roomId")
    title: str | None = None
    status: str | None = None
    course_id: str | None = Field(default=None, alias="courseId")

    @property
    def ended(self) -> bool:
        """The class is over."""
        return self.status == "ended"


class JoinGrant(BaseModel):
    """The latest join token the rooms function issued to a participant, as far as the tutor reads it."""

    model_config = _RECORD

    role: str = "STUDENT"
    expires_at: datetime | None = Field(default=None, alias="expiresAt")
    removed_at: datetime | None = Field(default=None, alias="removedAt")


class RoomTutor(BaseModel):
    """A room's tutor settings as stored; unset fields mean the teacher never changed them."""

    model_config = _RECORD

    enabled: bool | None = None
    mode: Literal["hints", "explain"] | None = None
    topic: str | None = None
    updated_at: datetime | None = Field(default=None, alias="updatedAt")
    kb_id: str | None = Field(default=None, alias="kbId")
    material_kinds: dict[str, str] = Field(default_factory=dict, alias="materialKinds")


class Interaction(BaseModel):
    """One question and its answer as stored (`vector`: the question's float32 embedding, raw bytes)."""

    model_config = _RECORD

    id: str = Field(alias="_id")
    org_id: str = Field(alias="orgId")
    room_id: str = Field(alias="roomId")
    student_uid: str = Field(alias="studentUid")
    question: str
    answer: str = ""
    status: Literal["completed", "failed"]
    mode: Literal["hints", "explain"] = "explain"
    grounded: bool = False
    sources: list[dict[str, Any]] = Field(default_factory=list)
    error: str | None = None
    input_tokens: int = Field(default=0, alias="inputTokens")
    output_tokens: int = Field(default=0, alias="outputTokens")
    credits_milli: int = Field(default=0, alias="creditsMilli")
    model: str | None = None
    request_modality: str = Field(default="text", alias="requestModality")
    response_modality: str = Field(default="text", alias="responseModality")
    vector: bytes | None = None
    created_at: datetime = Field(alias="createdAt")


@dataclass(frozen=True, slots=True)
class PastExchange:
    """A completed exchange as the context and the summary read it (oldest or newest first)."""

    id: str
    student_uid: str
    question: str
    answer: str
    vector: bytes | None
    created_at: datetime | None = None
    mode: str = "explain"


@dataclass(frozen=True, slots=True)
class RoomUsage:
    """A room's exchanges, students and tokens, and the credits the ledger charged for them."""

    interactions: int = 0
    students: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    failed: int = 0
    credits_milli: int = 0


class SummaryContent(BaseModel):
    """What a summary run writes: the summary, the top questions, how it was made, and counts."""

    model_config = _RECORD

    summary: str
    top_queries: list[TutorTopQuery] = Field(default_factory=list, alias="topQueries")
    method: Literal["extractive", "generated"]
    interactions: int = 0
    students: int = 0


class ClassSummary(BaseModel):
    """A room's summary record: one per room, claimed by a run, then `ready` or `failed`."""

    model_config = _RECORD

    status: Literal["running", "ready", "failed"]
    run_id: str | None = Field(default=None, alias="runId")
    summary: str | None = None
    top_queries: list[TutorTopQuery] = Field(default_factory=list, alias="topQueries")
    method: Literal["extractive", "generated"] | None = None
    interactions: int = 0
    students: int = 0
    created_at: datetime | None = Field(default=None, alias="createdAt")
    error: str | None = None
