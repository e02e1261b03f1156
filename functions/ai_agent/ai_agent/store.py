"""MongoDB access for the AI API: one record per request (for the usage summary) and the reads of
the AI tutor's `tutor_interactions` collection the summary's `aiTutor` breakdown needs.

`tutor_interactions` documents (written by the tutor) carry: orgId, roomId, studentUid,
inputTokens, outputTokens, createdAt, status.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from verriflo import db

REQUESTS, TUTOR_INTERACTIONS = "ai_requests", "tutor_interactions"


def _indexes():
    from pymongo import ASCENDING, DESCENDING, IndexModel

    return [IndexModel([("orgId", ASCENDING), ("createdAt", DESCENDING)])]


db.register_indexes(REQUESTS, _indexes)


def record_request(doc: dict[str, Any]) -> None:
    """Store one AI request (id = the request id, so a retry cannot count twice)."""
    from pymongo.errors import DuplicateKeyError

    with db.unavailable_on_failure():
        try:
            db.collection(REQUESTS).insert_one(doc)
        except DuplicateKeyError:
            pass


def agent_totals(org_id: str, start: datetime, end: datetime) -> dict[str, Any]:
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
        return {
            "requests": 0,
            "sessions": 0,
            "inputTokens": 0,
            "outputTokens": 0,
            "creditsMilli": 0,
            "failed": 0,
        }
    row = rows[0]
    return {
        "requests": row["requests"],
        "sessions": len(row["sessions"]),
        "inputTokens": row["inputTokens"],
        "outputTokens": row["outputTokens"],
        "creditsMilli": row["creditsMilli"],
        "failed": row["failed"],
    }


def tutor_totals(org_id: str, start: datetime, end: datetime) -> dict[str, Any]:
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
        return {
            "interactions": 0,
            "students": 0,
            "rooms": 0,
            "inputTokens": 0,
            "outputTokens": 0,
            "failed": 0,
        }
    row = rows[0]
    return {
        "interactions": row["interactions"],
        "students": len(row["students"]),
        "rooms": len(row["rooms"]),
        "inputTokens": row["inputTokens"],
        "outputTokens": row["outputTokens"],
        "failed": row["failed"],
    }
