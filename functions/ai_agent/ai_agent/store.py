"""MongoDB access for the AI API: one record per request (for the usage summary) and the reads of
the AI tutor's `tutor_interactions` collection the summary's `aiTutor` breakdown needs.

`tutor_interactions` documents (written by the tutor) carry: orgId, roomId, studentUid,
inputTokens, outputTokens, createdAt, status.
"""

# No `from __future__ import annotations`: pydantic would evaluate each string annotation as it
# creates the record class below, a cost every cold start pays.

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field
from verriflo import db

REQUESTS, TUTOR_INTERACTIONS = "ai_requests", "tutor_interactions"


def _indexes():
    from pymongo import ASCENDING, DESCENDING, IndexModel

    return [IndexModel([("orgId", ASCENDING), ("createdAt", DESCENDING)])]


db.register_indexes(REQUESTS, _indexes)


class AiRequest(BaseModel):
    """One AI API request as stored (its id is the request id)."""

    model_config = ConfigDict(defer_build=True, populate_by_name=True)

    id: str = Field(alias="_id")
    org_id: str = Field(alias="orgId")
    chat_id: str | None = Field(default=None, alias="chatId")
    session_key: str = Field(alias="sessionKey", description="the chat, or the request for a one-off")
    input_tokens: int = Field(default=0, alias="inputTokens")
    output_tokens: int = Field(default=0, alias="outputTokens")
    credits_milli: int = Field(default=0, alias="creditsMilli")
    status: Literal["completed", "failed"]
    model: str | None = None
    request_modality: str = Field(alias="requestModality")
    response_modality: str = Field(alias="responseModality")
    created_at: datetime = Field(alias="createdAt")


@dataclass(frozen=True, slots=True)
class AgentTotals:
    """The AI API's requests in a period."""

    requests: int = 0
    sessions: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    credits_milli: int = 0
    failed: int = 0


@dataclass(frozen=True, slots=True)
class TutorTotals:
    """The AI tutor's interactions in a period."""

    interactions: int = 0
    students: int = 0
    rooms: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    failed: int = 0


def record_request(request: AiRequest) -> None:
    """Store one AI request (id = the request id, so a retry cannot count twice)."""
    from pymongo.errors import DuplicateKeyError

    with db.unavailable_on_failure():
        try:
            db.collection(REQUESTS).insert_one(request.model_dump(by_alias=True))
        except DuplicateKeyError:
            pass


def agent_totals(org_id: str, start: datetime, end: datetime) -> AgentTotals:
    """Requests, sessions (distinct chats) and tokens of the AI API in [start, end)."""
    pipeline = [
        {"$match": {"orgId": org_id, "createdAt": {"$gte": start, "$lt": end}}},
        {
            "$group": {
                "_id": None,
                "requests": {"$sum": 1},
                "sessions": {"$addToSet": "$sessionKey"},
                "inputTokens": {"$sum": "$inputTokens"},
                "outputTokens": {"$sum": "$outputTokens"},
                "creditsMilli": {"$sum": "$creditsMilli"},
                "failed": {"$sum": {"$cond": [{"$eq": ["$status", "failed"]}, 1, 0]}},
            }
        },
    ]
    with db.unavailable_on_failure():
        rows = list(db.collection(REQUESTS).aggregate(pipeline))
    if not rows:
        return AgentTotals()
    row = rows[0]
    return AgentTotals(
        requests=row["requests"],
        sessions=len(row["sessions"]),
        input_tokens=row["inputTokens"],
        output_tokens=row["outputTokens"],
        credits_milli=row["creditsMilli"],
        failed=row["failed"],
    )


def tutor_totals(org_id: str, start: datetime, end: datetime) -> TutorTotals:
    """Interactions, students, rooms and tokens of the AI tutor in [start, end)."""
    pipeline = [
        {"$match": {"orgId": org_id, "createdAt": {"$gte": start, "$lt": end}}},
        {
            "$group": {
                "_id": None,
                "interactions": {"$sum": 1},
                "students": {"$addToSet": "$studentUid"},
                "rooms": {"$addToSet": "$roomId"},
                "inputTokens": {"$sum": "$inputTokens"},
                "outputTokens": {"$sum": "$outputTokens"},
                "failed": {"$sum": {"$cond": [{"$eq": ["$status", "failed"]}, 1, 0]}},
            }
        },
    ]
    with db.unavailable_on_failure():
        rows = list(db.collection(TUTOR_INTERACTIONS).aggregate(pipeline))
    if not rows:
        return TutorTotals()
    row = rows[0]
    return TutorTotals(
        interactions=row["interactions"],
        students=len(row["students"]),
        rooms=len(row["rooms"]),
        input_tokens=row["inputTokens"],
        output_tokens=row["outputTokens"],
        failed=row["failed"],
    )
