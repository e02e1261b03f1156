"""Request and response models of the rooms API, with the fields, defaults and limits of API.md."""

# No `from __future__ import annotations`: pydantic would evaluate each string annotation as it
# creates every model class below, a cost every cold start pays.

from datetime import datetime
from typing import Annotated, Literal

from pydantic import Field, model_validator
from verriflo.models import ApiModel, StrictApiModel

Role = Literal["TEACHER", "MODERATOR", "STUDENT", "ADMIN"]
RoomIdText = Annotated[
    str,
    Field(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9_-]+$",
        description="letters, digits, - and _; unique in the org forever",
    ),
]
Name = Annotated[str, Field(min_length=1, max_length=100)]
Uid = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[^\s/]+$")]
Layout = Literal["grid", "speaker"]
Preset = Literal["H264_720P_30", "H264_1080P_30"]


class Participant(StrictApiModel):
    """Who the token is for; `uid` becomes the LiveKit identity."""

    uid: Uid
    name: Name
    role: Role | None = Field(default=None, description="TEACHER on create and STUDENT on join when omitted")


class Customization(StrictApiModel):
    """What the classroom page shows and allows; omitted flags keep the room's (or the default)."""

    show_lobby: bool | None = None
    show_class_title: bool | None = None
    show_logo: bool | None = None
    show_header: bool | None = None
    show_participant_name: bool | None = None
    show_mic_indicator: bool | None = None
    need_chat: bool | None = None
    need_controlbar: bool | None = None
    allow_screen_share: bool | None = None
    allow_hand_raise: bool | None = None
    allow_recording: bool | None = None
    allow_ingress: bool | None = Field(default=None, description="default false")
    validate_domain: bool | None = None
    theme: Literal["system", "light", "dark"] | None = None

    def given(self) -> dict[str, object]:
        """Only the flags the caller set, in wire (camelCase) form."""
        return self.model_dump(by_alias=True, exclude_none=True)


class RoomSettings(StrictApiModel):
    max_participants: int = Field(default=1000, ge=1, le=5000)
    empty_timeout: int = Field(default=300, ge=1, le=1800, description="seconds")


class CreateRoom(StrictApiModel):
    room_id: RoomIdText
    title: Name
    participant: Participant
    customization: Customization = Field(default_factory=Customization)
    settings: RoomSettings = Field(default_factory=RoomSettings)
    course_id: RoomIdText | None = Field(
        default=None,
        description="the course this class belongs to (letters, digits, `-`, `_`): the AI tutor draws on "
        "the transcribed recordings of the course's earlier classes",
    )


class JoinRoom(StrictApiModel):
    participant: Participant
    customization: Customization = Field(default_factory=Customization)


class RoomRef(ApiModel):
    room_id: str
    sid: str = Field(description="LiveKit room sid, RM_...")


class JoinInfo(ApiModel):
    token: str
    iframe_url: str
    expires_at: datetime


class RoomCreated(JoinInfo):
    room: RoomRef


class RoomStatus(ApiModel):
    exists: bool
    is_active: bool = False
    room_id: str
    title: str | None = None
    participant_count: int = 0
    has_teacher: bool = False
    is_recording: bool = False
    created_at: datetime | None = None
    started_at: datetime | None = None


class RoomDestroyed(ApiModel):
    room_id: str
    participants_disconnected: int
    was_recording: bool
    ended_at: datetime


class Timestamps(ApiModel):
    started_at: datetime | None = None
    ended_at: datetime | None = None


CreditsByService = Annotated[
    dict[str, float],
    Field(
        description="credits the ledger debited for the room per service (live, ai_tutor, transcode, "
        "storage, ...); they add up to totalCredits"
    ),
]


class RoomSummary(ApiModel):
    room_id: str
    room_name: str
    total_credits: float = Field(
        description="every debit of the room in the ledger (as /v1/billing/usage?groupBy=room)"
    )
    credits_by_service: CreditsByService
    total_participants: int
    avg_stay: float = Field(description="seconds")
    timestamps: Timestamps
    status: Literal["live", "finished"]


RoomState = Literal["live", "finished"]


class RoomListQuery(ApiModel):
    """The listing's filters (query string), checked together."""

    status: RoomState | None = None
    start: datetime | None = None
    end: datetime | None = None
    limit: int = Field(default=20, ge=1, le=100)
    cursor: str | None = None

    @model_validator(mode="after")
    def _ordered(self) -> "RoomListQuery":
        for value, name in ((self.start, "from"), (self.end, "to")):
            if value is not None and value.tzinfo is None:
                raise ValueError(f"'{name}' needs a time zone (e.g. 2026-12-01T00:00:00Z)")
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("'from' must be before 'to'")
        return self


class RoomListItem(ApiModel):
    """What a dashboard shows of one room."""

    room_id: str
    sid: str
    title: str
    status: RoomState
    created_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None
    participants_now: int = Field(description="connected now (0 once finished)")
    total_participants: int = Field(description="distinct participants who ever joined")
    recordings: int = Field(description="recordings started in the room")
    total_credits: float
    credits_by_service: CreditsByService


class RoomList(ApiModel):
    rooms: list[RoomListItem] = Field(description="newest (by creation) first")
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null at the end")


class RecordingOptions(StrictApiModel):
    show_logo: bool = False
    layout: Layout = "grid"
    preset: Preset = "H264_1080P_30"


class StartRecording(StrictApiModel):
    options: RecordingOptions = Field(default_factory=RecordingOptions)
    requested_by: Uid | None = Field(
        default=None, description="uid of the participant asking; must be a TEACHER or ADMIN of the room"
    )


class RecordingStarted(ApiModel):
    egress_id: str
    room_id: str
    status: str = "EGRESS_STARTING"
    started_at: datetime


class StopRecording(StrictApiModel):
    egress_id: str | None = Field(default=None, description="defaults to the room's active recording")


class RecordingStopped(ApiModel):
    egress_id: str
    room_id: str
    status: str
    stopped_at: datetime


# A recording's HLS video (`/v1/cdn/videos/{videoId}`), as the recording list and download show it.
VideoStatus = Literal["pending", "processing", "completed", "failed"]
VIDEO_ID = "the recording's video in `/v1/cdn/videos` (its HLS), once the MP4 is stored"
VIDEO_STATUS = "transcoding of the recording's HLS: `pending`, `processing`, `completed`, `failed`"
PLAYBACK_URL = (
    "signed HLS master playlist URL (about one hour) once the HLS is playable; "
    "a new one: `GET /v1/cdn/videos/{videoId}/url`"
)


class Recording(ApiModel):
    egress_id: str
    status: str
    layout: str
    preset: str
    show_logo: bool
    started_at: datetime
    ended_at: datetime | None = None
    duration: float | None = Field(default=None, description="seconds")
    size: int | None = Field(default=None, description="bytes")
    available_until: datetime | None = None
    downloadable: bool = False
    video_id: str | None = Field(default=None, description=VIDEO_ID)
    video_status: VideoStatus | None = Field(default=None, description=VIDEO_STATUS)
    playback_url: str | None = Field(default=None, description=PLAYBACK_URL)


class RecordingList(ApiModel):
    room_id: str
    recordings: list[Recording]


class RecordingDownload(ApiModel):
    egress_id: str
    url: str
    expires_at: datetime
    video_id: str | None = Field(default=None, description=VIDEO_ID)
    video_status: VideoStatus | None = Field(default=None, description=VIDEO_STATUS)
    playback_url: str | None = Field(default=None, description=PLAYBACK_URL)


class Track(ApiModel):
    sid: str
    source: str
    type: str
    muted: bool


class Permissions(ApiModel):
    can_publish: bool
    can_subscribe: bool
    can_publish_data: bool
    can_screen_share: bool
    hidden: bool = False


class ParticipantView(ApiModel):
    uid: str
    name: str
    role: str | None
    state: str
    joined_at: datetime | None
    tracks: list[Track]
    permissions: Permissions | None


class ParticipantList(ApiModel):
    room_id: str
    participants: list[ParticipantView]


class MuteTrack(StrictApiModel):
    track_sid: str = Field(min_length=1, max_length=64)
    muted: bool = True


class PermissionChanges(StrictApiModel):
    can_publish: bool | None = None
    can_subscribe: bool | None = None
    can_publish_data: bool | None = None
    can_screen_share: bool | None = None
    hidden: bool | None = None


class UpdateParticipant(StrictApiModel):
    role: Role | None = None
    name: Name | None = None
    permissions: PermissionChanges | None = None


class ParticipantRemoved(ApiModel):
    room_id: str
    uid: str
    removed: bool = True
    connected: bool = Field(
        description="true: they were connected and are disconnected now; false: they held a join "
        "token and had not connected, and it admits them no more"
    )


class WebhookAck(ApiModel):
    event_id: str
    event: str
    duplicate: bool = False
