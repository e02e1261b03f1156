"""The classroom records the rooms function stores, and the names of their MongoDB collections.

What the data-access modules (`store` for rooms, `session_store`, `grant_store`, `recording_store`,
`hook_store`) return and take are these typed records: no pymongo or bson type leaves them. Their
attributes are snake_case; the aliases are the stored (camelCase) field names.
"""

# No `from __future__ import annotations`: pydantic would evaluate each string annotation as it
# creates every record class below, a cost every cold start pays.

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from verriflo import outbox

ROOMS, SESSIONS, RECORDINGS, HOOKS = "rooms", "room_sessions", "recordings", "livekit_events"
# The class summaries (ai_tutor's store): `summary.ready` is recorded with the stored summary and
# drained by the ClassSummary's Publish step; a run that died before it is completed by the rooms sweep.
SUMMARIES = "tutor_summaries"
# The join tokens we issued: one record per participant of a room (their latest token) and whether
# they were removed since; the AI tutor admits a STUDENT who holds one, connected or not.
GRANTS = "room_grants"


_RECORD = ConfigDict(defer_build=True, populate_by_name=True)


def _text(value: Any) -> Any:
    return None if value is None else str(value)


# A room's MongoDB `_id` (an ObjectId) as text: only this module turns it back (`store._object_id`).
Key = Annotated[str | None, BeforeValidator(_text)]


class Ending(BaseModel):
    """How a class ended: by the API's destroy (with what it found) or by LiveKit closing the room."""

    model_config = _RECORD

    by: Literal["api", "livekit"] | None = None
    participants_disconnected: int = Field(default=0, alias="participantsDisconnected")
    was_recording: bool = Field(default=False, alias="wasRecording")


class Room(BaseModel):
    """A classroom as stored: open, or ended and kept as a tombstone (its roomId is never reused)."""

    model_config = _RECORD

    key: Key = Field(default=None, alias="_id")
    org_id: str = Field(alias="orgId")
    room_id: str = Field(alias="roomId")
    title: str
    course_id: str | None = Field(default=None, alias="courseId")
    lk_name: str = Field(alias="lkName")
    sid: str
    status: Literal["open", "ended"] = "open"
    customization: dict[str, Any] = Field(default_factory=dict)
    settings: dict[str, Any] = Field(default_factory=dict)
    created_by: str | None = Field(default=None, alias="createdBy")
    created_at: datetime = Field(alias="createdAt")
    started_at: datetime | None = Field(default=None, alias="startedAt")
    ended_at: datetime | None = Field(default=None, alias="endedAt")
    active_egress_id: str | None = Field(default=None, alias="activeEgressId")
    ended: Ending | None = None
    # what its end implies and is not carried out yet (verriflo.outbox writes it; never written here)
    pending_effects: list[dict[str, Any]] = Field(default_factory=list, alias=outbox.FIELD, exclude=True)

    @property
    def is_ended(self) -> bool:
        return self.status == "ended"


class Session(BaseModel):
    """One participant's stay in a room, keyed by LiveKit's room and participant sids."""

    model_config = _RECORD

    id: str = Field(alias="_id")
    org_id: str = Field(alias="orgId")
    room_id: str = Field(alias="roomId")
    lk_room: str = Field(alias="lkRoom")
    uid: str
    name: str = ""
    role: str
    customization: dict[str, Any] = Field(default_factory=dict)
    joined_at: datetime = Field(alias="joinedAt")
    left_at: datetime | None = Field(default=None, alias="leftAt")
    seconds: float | None = None
    # the last time the rooms sweep saw the participant connected in LiveKit (rooms.reconcile)
    seen_at: datetime | None = Field(default=None, alias="seenAt")
    # "sweep" when the rooms sweep opened or closed it because LiveKit's webhook was lost for good
    opened_by: Literal["sweep"] | None = Field(default=None, alias="openedBy")
    closed_by: Literal["sweep"] | None = Field(default=None, alias="closedBy")
    # what its opening or closing implies and is not carried out yet (verriflo.outbox writes it)
    pending_effects: list[dict[str, Any]] = Field(default_factory=list, alias=outbox.FIELD, exclude=True)


class JoinGrant(BaseModel):
    """The latest join token we issued to one participant of a room (not the token itself)."""

    model_config = _RECORD

    org_id: str = Field(alias="orgId")
    room_id: str = Field(alias="roomId")
    uid: str
    role: str
    issued_at: datetime = Field(alias="issuedAt")
    expires_at: datetime = Field(alias="expiresAt")


class Removal(BaseModel):
    """A participant removed from a room, as their grant records it: since when, and the LiveKit
    connections (participant sids) they had when removed, which were in class before it."""

    model_config = _RECORD

    uid: str
    removed_at: datetime = Field(alias="removedAt")
    connections: list[str] = Field(default_factory=list, alias="removedSids")


class EgressRecording(BaseModel):
    """A recording our API started (LiveKit Egress `id`), and what LiveKit reported of it since."""

    model_config = _RECORD

    id: str = Field(alias="_id")
    org_id: str = Field(alias="orgId")
    room_id: str = Field(alias="roomId")
    status: str
    layout: str
    preset: str
    show_logo: bool = Field(default=False, alias="showLogo")
    bucket: str | None = None
    key: str | None = None
    requested_by: str | None = Field(default=None, alias="requestedBy")
    started_at: datetime = Field(alias="startedAt")
    ended_at: datetime | None = Field(default=None, alias="endedAt")
    size: int | None = None
    duration: float | None = None
    error: str | None = None
    delete_at: datetime | None = Field(default=None, alias="deleteAt")


class RecordingReport(BaseModel):
    """What one LiveKit report changes in a recording (fields left None are not reported)."""

    model_config = _RECORD

    status: str
    ended_at: datetime | None = Field(default=None, alias="endedAt")
    size: int | None = None
    duration: float | None = None
    error: str | None = None


class RoomTally(BaseModel):
    """What the listing shows of one room besides the room itself (from sessions and recordings)."""

    model_config = _RECORD

    participants_now: int = 0
    participants_total: int = 0
    recordings: int = 0
