"""CDN logic: create a video with a direct upload, list/get/delete, status and playback URL (the
two calls of API.md), and the stream proxy that signs every playlist it serves."""

from __future__ import annotations

import math
import re
from datetime import datetime, timedelta
from decimal import Decimal

from verriflo import media, objects, playback
from verriflo.auth import OrgContext
from verriflo.errors import BadRequest, Conflict, NotFound, PayloadTooLarge, ValidationFailed
from verriflo.media import Video
from verriflo.orgs import now

from cdn.models import (
    MAX_PARTS,
    MAX_SINGLE_PUT_BYTES,
    CompleteUpload,
    CreateVideo,
    RenditionInfo,
    Upload,
    UploadPart,
    VideoCreated,
    VideoDeleted,
    VideoInfo,
    VideoList,
    VideoStatus,
    VideoUrl,
)

SEGMENT = re.compile(r"^[A-Za-z0-9_-]{1,64}\.ts$")
PLAYLIST_TYPE = "application/vnd.apple.mpegurl"


def info(video: Video) -> VideoInfo:
    """The public view of a stored video."""
    return VideoInfo(
        video_id=video.id,
        title=video.title,
        kind=video.kind,
        room_id=video.room_id,
        status=video.status,
        progress=video.progress,
        message=video.message,
        size_bytes=video.size_bytes,
        duration_s=video.duration_s,
        width=video.width,
        height=video.height,
        playable=video.playable,
        created_at=video.created_at,
        completed_at=video.completed_at,
        expires_at=video.expires_at,
        renditions=[
            RenditionInfo(name=r.name, width=r.width, height=r.height, bandwidth=r.bandwidth)
            for r in video.renditions
        ],
    )


def _check_limits(org: OrgContext, size: int) -> None:
    limits = media.upload_limits(org.org_id)
    if size > limits.max_upload_bytes:
        raise PayloadTooLarge(
            f"The file is larger than the {limits.max_upload_bytes} bytes one upload may be "
            "for this organisation."
        )
    if media.storage_used(org.org_id) + size > limits.storage_bytes:
        raise PayloadTooLarge(
            f"This upload would take the organisation over its storage limit of {limits.storage_bytes} "
            "bytes; delete videos first."
        )


def part_sizes(total: int, part_size: int) -> list[tuple[int, int]]:
    """(part number, exact size) of each part of a `total`-byte multipart upload: every part is
    `part_size` but the last, which holds the rest."""
    return [
        (n, min(part_size, total - (n - 1) * part_size)) for n in range(1, math.ceil(total / part_size) + 1)
    ]


def create_video(org: OrgContext, body: CreateVideo) -> VideoCreated:
    """A pending video and a direct upload for its file (refused before any byte is sent if it
    cannot be paid for or stored)."""
    # Only this route needs the ledger: imported here so the other routes' cold starts skip its cost.
    from verriflo import ledger

    settings = media.media_settings()
    if body.multipart is False and body.size_bytes > MAX_SINGLE_PUT_BYTES:
        raise ValidationFailed("Invalid value for 'multipart': a file over 5 GiB must be sent in parts.")
    ledger.require_credits(
        org.org_id,
        Decimal(str(settings.min_upload_credits)),
        "Insufficient credits to transcode a video; add credits first.",
    )
    _check_limits(org, body.size_bytes)
    video = media.insert_video(
        org.org_id, title=body.title, size_bytes=body.size_bytes, content_type=body.content_type
    )
    expires_at = now() + timedelta(seconds=settings.upload_url_ttl_s)
    in_parts = (
        body.multipart
        if body.multipart is not None
        else body.size_bytes >= settings.multipart_threshold_bytes
    )
    if not in_parts:
        url = objects.presign_put(
            video.source_bucket,
            video.source_key,
            size=body.size_bytes,
            content_type=body.content_type,
            expires_s=settings.upload_url_ttl_s,
        )
        upload = Upload(
            type="put",
            url=url,
            expires_at=expires_at,
            headers={"Content-Type": body.content_type, "Content-Length": str(body.size_bytes)},
        )
    else:
        part_size = max(settings.multipart_part_bytes, math.ceil(body.size_bytes / MAX_PARTS))
        upload_id = objects.start_multipart(video.source_bucket, video.source_key, body.content_type)
        media.set_upload_id(org.org_id, video.id, upload_id)
        parts = [
            UploadPart(
                part_number=n,
                url=objects.presign_part(
                    video.source_bucket,
                    video.source_key,
                    upload_id,
                    n,
                    size=size,
                    expires_s=settings.upload_url_ttl_s,
                ),
            )
            for n, size in part_sizes(body.size_bytes, part_size)
        ]
        upload = Upload(
            type="multipart",
            upload_id=upload_id,
            part_size=part_size,
            parts=parts,
            complete_path=f"/v1/cdn/videos/{video.id}/upload/complete",
            expires_at=expires_at,
        )
    return VideoCreated(video=info(video), upload=upload)


def complete_upload(org: OrgContext, video_id: str, body: CompleteUpload) -> VideoInfo:
    """Join a multipart upload's parts; the stored file then starts transcoding."""
    video = media.get_video(org.org_id, video_id)
    if not video.upload_id:
        raise BadRequest("This video was not uploaded in parts.")
    if video.status != "pending":
        raise Conflict("This upload is already complete.")
    objects.complete_multipart(
        video.source_bucket, video.source_key, video.upload_id, [(p.part_number, p.etag) for p in body.parts]
    )
    return info(video)


def list_videos(
    org: OrgContext, *, limit: int, status: media.Status | None, before: datetime | None
) -> VideoList:
    """The org's videos, newest first, a page at a time."""
    found = media.list_videos(org.org_id, kind="video", status=status, limit=limit, before=before)
    return VideoList(
        videos=[info(v) for v in found], next_before=found[-1].created_at if len(found) == limit else None
    )


def get_video(org: OrgContext, video_id: str) -> VideoInfo:
    """One of the org's videos."""
    return info(media.get_video(org.org_id, video_id))


def delete_video(org: OrgContext, video_id: str) -> VideoDeleted:
    """Delete a video's media (ladder, poster, source) and its record."""
    media.purge(media.get_video(org.org_id, video_id))
    return VideoDeleted(video_id=video_id)


def status(org: OrgContext, video_id: str) -> VideoStatus:
    """API.md's status call."""
    video = media.get_video(org.org_id, video_id)
    return VideoStatus(
        video_id=video.id, status=video.status, progress=video.progress, created_at=video.created_at
    )


def playback_url(org: OrgContext, video_id: str, base_url: str) -> VideoUrl:
    """API.md's url call: a signed master playlist URL once any rendition is playable."""
    video = media.get_video(org.org_id, video_id)
    if not video.playable:
        return VideoUrl(type=None, url=None, poster_url=None, status=video.status, message=video.message)
    ttl = media.media_settings().playback_ttl_s
    token, _ = playback.sign(video.org_id, video.id, ttl)
    poster = playback.segment_url(video.poster_key, ttl) if video.poster_key else None
    return VideoUrl(
        type="hls",
        url=f"{base_url}/v1/cdn/stream/{video.id}/master.m3u8?token={token}",
        poster_url=poster,
        status=video.status,
        message=video.message,
    )


def _playable(token: str | None, video_id: str) -> Video:
    # The token first: without a valid one every id, well-formed or not, existing or not, gets the
    # same 403, so the public stream routes reveal nothing about which videos exist.
    grant = playback.verify(token, video_id)
    video = media.get_video(grant.org_id, video_id)
    if not video.playable:
        raise NotFound("This video is not playable.")
    return video


def master_playlist(video_id: str, token: str | None) -> str:
    """The master playlist with every variant URL carrying the caller's token."""
    video = _playable(token, video_id)
    text = objects.read_text(
        media.media_settings().media_bucket, video.media_prefix + "master.m3u8", "This video is not playable."
    )
    names = {r.name for r in video.renditions}
    lines = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            if line.split("/")[0] not in names:
                continue  # a rung the record does not list yet is not offered
            line = f"{line}?token={token}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def media_playlist(video_id: str, rendition: str, token: str | None) -> str:
    """A rendition's playlist with each segment URL signed for a short while."""
    video = _playable(token, video_id)
    if rendition not in {r.name for r in video.renditions}:
        raise NotFound("No such rendition.")
    settings = media.media_settings()
    text = objects.read_text(
        settings.media_bucket, f"{video.media_prefix}{rendition}/index.m3u8", "No such rendition."
    )
    # Long enough to play the whole video from the moment the playlist was fetched (players do not
    # reload a VOD playlist), short enough that a copied link soon dies.
    ttl = settings.segment_ttl_s + int(video.duration_s or 0)
    lines = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            if not SEGMENT.fullmatch(line):
                raise NotFound("No such segment.")
            line = playback.segment_url(f"{video.media_prefix}{rendition}/{line}", ttl)
        lines.append(line)
    return "\n".join(lines) + "\n"
