"""CDN request and answer models (camelCase JSON; requests are strict)."""

# No `from __future__ import annotations`: pydantic would evaluate each string annotation as it
# creates every model class below, a cost every cold start pays.

from datetime import datetime
from typing import Literal

from pydantic import Field
from verriflo import media
from verriflo.models import ApiModel, StrictApiModel

MAX_PARTS = 10_000  # S3's limit on parts of one multipart upload
MAX_SINGLE_PUT_BYTES = 5 * 1024**3  # S3: larger objects must be uploaded in parts


class CreateVideo(StrictApiModel):
    title: str = Field(min_length=1, max_length=200)
    size_bytes: int = Field(gt=0, description="exact size of the file to upload, in bytes")
    content_type: str = Field(
        default="video/mp4",
        max_length=100,
        pattern=r"^(video/[a-z0-9.+-]+|application/octet-stream|application/mp4)$",
    )
    multipart: bool | None = Field(
        default=None,
        strict=True,
        description="true: a multipart upload whatever the size (browsers: parts can be retried and "
        "show progress); false: one PUT (at most 5 GiB); absent: multipart from the deployment's threshold",
    )


class UploadPart(ApiModel):
    part_number: int
    url: str


class Upload(ApiModel):
    """How to send the file: one PUT, or a multipart upload of `partSize` parts then `complete`."""

    type: Literal["put", "multipart"]
    method: Literal["PUT"] = "PUT"
    url: str | None = None
    headers: dict[str, str] = Field(default_factory=dict, description="send these with the PUT")
    upload_id: str | None = None
    part_size: int | None = None
    parts: list[UploadPart] = Field(default_factory=list)
    complete_path: str | None = None
    expires_at: datetime


class RenditionInfo(ApiModel):
    name: str
    width: int
    height: int
    bandwidth: int


class VideoInfo(ApiModel):
    video_id: str
    title: str
    kind: Literal["video", "recording"]
    room_id: str | None = None
    status: media.Status
    progress: int
    message: str
    size_bytes: int
    duration_s: float | None = None
    width: int | None = None
    height: int | None = None
    renditions: list[RenditionInfo]
    playable: bool
    created_at: datetime
    completed_at: datetime | None = None
    expires_at: datetime | None = None


class VideoCreated(ApiModel):
    video: VideoInfo
    upload: Upload


class VideoList(ApiModel):
    videos: list[VideoInfo]
    next_before: datetime | None = Field(default=None, description="pass as `before` for the next page")


class CompletedPart(StrictApiModel):
    part_number: int = Field(ge=1, le=MAX_PARTS)
    etag: str = Field(min_length=1, max_length=200)


class CompleteUpload(StrictApiModel):
    parts: list[CompletedPart] = Field(min_length=1, max_length=MAX_PARTS)


class VideoDeleted(ApiModel):
    """`DELETE /v1/cdn/videos/{videoId}`: the video that is gone (named apart from the other
    functions' `Deleted`, whose field is `id`: one merged document has one schema per name)."""

    video_id: str
    deleted: bool = True


class VideoStatus(ApiModel):
    """API.md: `GET /v1/cdn/videos/:videoId/status`."""

    video_id: str
    status: media.Status
    progress: int = Field(ge=0, le=100)
    created_at: datetime


class VideoUrl(ApiModel):
    """API.md: `GET /v1/cdn/videos/:videoId/url`."""

    type: Literal["hls", "mp4"] | None
    url: str | None
    poster_url: str | None
    status: media.Status
    message: str
