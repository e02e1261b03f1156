"""Videos and recordings: their settings, their MongoDB records, and the rules for their S3 keys.

This is the data-access module both media functions share (`functions/cdn` creates and serves
videos, `functions/transcode` turns uploads into HLS) and the one the rooms function calls for
recordings (`register_recording`, `list_recordings`, `get_recording`, `class_ended`). Every read and
write filters by org; the transcoder's writes are also fenced by its claim, so a worker that lost
its claim can never overwrite a newer attempt's state.

One module past 500 lines on purpose: every function here reads or writes the one `videos`
document under the same rules (org filter, claim fence, outbox effects in the same update), and
the sections (records, limits, the transcoder's state machine, recordings, the sweep's queries)
are read against each other. The name: `media` is the domain (videos and recordings, the media
buckets); `verriflo_ai.media` calls the AI media functions, in another package.
"""

# No `from __future__ import annotations`: pydantic would evaluate each string annotation as it
# creates every model class below, a cost every cold start pays.

import re
from datetime import datetime, timedelta
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from verriflo import db, outbox
from verriflo.errors import BadRequest, NotFound
from verriflo.orgs import new_id, now
from verriflo.settings import EnvSettings, SettingsConfigDict

VIDEOS = "videos"
# The records functions/rooms keeps of each Egress it started itself (rooms.records.RECORDINGS): the
# only recordings the transcoder accepts (`started_recording`).
STARTED_RECORDINGS = "recordings"
# functions/rooms' rooms (rooms.records.ROOMS): a recording's retention starts when its class ends
# (`endedAt`), and no recording is deleted while its room is open.
ROOMS = "rooms"
LIMITS = "media_limits"  # one document per org that has its own limits (`_id` is the org id)

Status = Literal["pending", "processing", "completed", "failed"]
Kind = Literal["video", "recording"]
# What the API and the events call a kind: an org's own upload, or a class recording (stored kinds
# stay "video" and "recording", so no record needs rewriting).
PublicKind = Literal["upload", "recording"]

# `<orgId>/<videoId>/source`: ids are our own `kind_<hex>` ids, so anything else in a key (`..`,
# spaces, unicode look-alikes, extra levels) is refused before any lookup happens.
_ID = r"[a-z]{2,5}_[0-9a-f]{8,40}"
SOURCE_KEY = re.compile(r"^(?P<org>org_[0-9a-f]{8,40})/(?P<video>(?:vid|rec)_[0-9a-f]{8,40})/source$")
VIDEO_ID = re.compile(rf"^{_ID}$")
# LiveKit Egress files as functions/rooms names them: `recordings/<orgId>/<roomId>/<32 hex>.mp4`.
RECORDING_KEY = re.compile(
    r"^recordings/(?P<org>org_[0-9a-f]{8,40})/(?P<room>[A-Za-z0-9_-]{1,100})/"
    r"(?P<file>[0-9a-f]{32})\.mp4$"
)


class MediaSettings(EnvSettings):
    """Buckets, limits and delivery settings of the media functions."""

    model_config = SettingsConfigDict(extra="ignore")

    uploads_bucket: str = "verriflo-uploads"
    media_bucket: str = "verriflo-media"
    recordings_bucket: str = "verriflo-recordings"
    playback_secret_name: str = "verriflo/playback-signing-key"  # noqa: S105 - a name, not a secret
    max_upload_bytes: int = Field(
        default=20 * 1024**3, ge=1, description="largest single upload (orgs without their own limit)"
    )
    org_storage_bytes: int = Field(
        default=200 * 1024**3, ge=1, description="all of an org's sources together (orgs without their own)"
    )
    multipart_threshold_bytes: int = Field(default=100 * 1024**2, ge=5 * 1024**2)
    multipart_part_bytes: int = Field(default=64 * 1024**2, ge=5 * 1024**2, le=5 * 1024**3)
    upload_url_ttl_s: int = Field(default=3600, ge=60, le=7 * 86_400)
    playback_ttl_s: int = Field(default=3600, ge=60, le=86_400, description="life of a playback URL")
    segment_ttl_s: int = Field(
        default=900, ge=60, le=86_400, description="life of a segment URL, plus the video's length"
    )
    public_base_url: str | None = Field(
        default=None, description="the API base URL (API.md paths follow it), e.g. https://api.example.com"
    )
    cloudfront_domain: str | None = Field(default=None, description="serve segments through CloudFront (AWS)")
    cloudfront_key_pair_id: str | None = None
    cloudfront_private_key_secret_name: str | None = None
    recording_retention_hours: float = Field(default=6, gt=0, le=24 * 365)
    transcode_lease_s: int = Field(
        default=960, ge=30, description="a claim older than this may be taken over"
    )
    chunk_threshold_s: float = Field(default=600, ge=30, description="longer sources go to the chunked path")
    chunk_length_s: float = Field(default=120, ge=8, description="a multiple of the HLS segment length")
    transcode_state_machine_arn: str | None = None
    transcode_function_name: str | None = Field(
        default=None, description="the S3-triggered transcoder, invoked again for a lost trigger"
    )
    transcode_failed_queue_url: str | None = Field(
        default=None,
        description="the transcoder's on-failure destination (invocations that spent every retry)",
    )
    reconcile_after_s: int = Field(
        default=900, ge=60, description="a pending video this old is checked against its upload"
    )
    max_redispatches: int = Field(default=3, ge=0, description="transcodes started again before giving up")
    min_upload_credits: float = Field(default=1, ge=0, description="credits an org must hold to upload")


@cache
def media_settings() -> MediaSettings:
    """The media settings, read once per process."""
    return MediaSettings()


def _indexes():
    from pymongo import ASCENDING, DESCENDING, IndexModel

    return [
        IndexModel([("orgId", ASCENDING), ("createdAt", DESCENDING)]),
        IndexModel([("orgId", ASCENDING), ("kind", ASCENDING), ("roomId", ASCENDING)]),
        IndexModel([("kind", ASCENDING), ("expiresAt", ASCENDING)]),
    ]


db.register_indexes(VIDEOS, _indexes)
db.register_indexes(VIDEOS, outbox.indexes)


class Rendition(BaseModel):
    """One published rung of the HLS ladder."""

    model_config = ConfigDict(defer_build=True)

    name: str
    width: int
    height: int
    bandwidth: int
    codecs: str


class Video(BaseModel):
    """A video or recording as stored."""

    model_config = ConfigDict(defer_build=True, populate_by_name=True)

    id: str = Field(alias="_id")
    org_id: str = Field(alias="orgId")
    kind: Kind = "video"
    title: str = ""
    room_id: str | None = Field(default=None, alias="roomId")
    status: Status = "pending"
    progress: int = 0
    message: str = ""
    size_bytes: int = Field(default=0, alias="sizeBytes")
    content_type: str = Field(default="video/mp4", alias="contentType")
    source_bucket: str = Field(alias="sourceBucket")
    source_key: str = Field(alias="sourceKey")
    upload_id: str | None = Field(default=None, alias="uploadId")
    duration_s: float | None = Field(default=None, alias="durationS")
    width: int | None = None
    height: int | None = None
    renditions: list[Rendition] = Field(default_factory=list)
    playable: bool = False
    poster_key: str | None = Field(default=None, alias="posterKey")
    thumbnail_keys: list[str] = Field(default_factory=list, alias="thumbnailKeys")
    attempt: int = 0
    claimed_by: str | None = Field(default=None, alias="claimedBy")
    lease_until: datetime | None = Field(default=None, alias="leaseUntil")
    chunks_total: int = Field(default=0, alias="chunksTotal")
    chunks_done: list[int] = Field(default_factory=list, alias="chunksDone")
    created_at: datetime = Field(alias="createdAt")
    updated_at: datetime | None = Field(default=None, alias="updatedAt")
    completed_at: datetime | None = Field(default=None, alias="completedAt")
    expires_at: datetime | None = Field(default=None, alias="expiresAt")
    stored_bytes: int | None = Field(default=None, alias="storedBytes")
    # a recording's LiveKit Egress (the rooms API's recording id)
    egress_id: str | None = Field(default=None, alias="egressId")
    captions: dict[str, Any] | None = None  # verriflo.transcripts.CaptionsState

    @property
    def public_kind(self) -> PublicKind:
        """The kind the API and the events name: `upload` or `recording`."""
        return "recording" if self.kind == "recording" else "upload"

    @property
    def media_prefix(self) -> str:
        """Where this video's HLS ladder, poster and thumbnails live in the media bucket."""
        return media_prefix(self.org_id, self.id)


def source_key(org_id: str, video_id: str) -> str:
    """The uploads-bucket key of a video's source file."""
    return f"{org_id}/{video_id}/source"


def media_prefix(org_id: str, video_id: str) -> str:
    """The media-bucket prefix of a video's outputs (always ends with `/`)."""
    return f"{org_id}/{video_id}/"


def parse_source_key(key: str) -> tuple[str, str]:
    """(org id, video id) of an upload key; BadRequest for any key we did not hand out."""
    match = SOURCE_KEY.fullmatch(key)
    if not match:
        raise BadRequest("The object key is not a Verriflo upload key.")
    return match["org"], match["video"]


def check_video_id(video_id: str) -> str:
    """A video id from a URL: NotFound unless it has our id shape (no lookups for junk)."""
    if not VIDEO_ID.fullmatch(video_id):
        raise NotFound("No such video.")
    return video_id


def _doc(video: dict[str, Any] | None) -> Video | None:
    return Video.model_validate(video) if video else None


# --- limits per org ---------------------------------------------------------------------------------


class UploadLimits(BaseModel):
    """An org's effective upload limits: its own where the operators set them, else the deployment's."""

    model_config = ConfigDict(defer_build=True)

    org_id: str
    max_upload_bytes: int
    storage_bytes: int
    own: list[str] = Field(default_factory=list, description="which limits are the org's own")


def upload_limits(org_id: str) -> UploadLimits:
    """The limits an upload by `org_id` is checked against."""
    settings = media_settings()
    with db.unavailable_on_failure():
        doc = db.collection(LIMITS).find_one({"_id": org_id}) or {}
    own = [name for name in ("maxUploadBytes", "storageBytes") if doc.get(name) is not None]
    return UploadLimits(
        org_id=org_id,
        max_upload_bytes=doc.get("maxUploadBytes") or settings.max_upload_bytes,
        storage_bytes=doc.get("storageBytes") or settings.org_storage_bytes,
        own=own,
    )


def set_upload_limits(
    org_id: str, *, max_upload_bytes: int | None = None, storage_bytes: int | None = None
) -> UploadLimits:
    """Set an org's own limits (bytes; 0 or less clears one, so the deployment's applies again;
    None leaves it as it is)."""
    changes = {"maxUploadBytes": max_upload_bytes, "storageBytes": storage_bytes}
    update: dict[str, Any] = {"$set": {"updatedAt": now()}}
    for name, value in changes.items():
        if value is not None and value > 0:
            update["$set"][name] = int(value)
        elif value is not None:
            update.setdefault("$unset", {})[name] = ""
    with db.unavailable_on_failure():
        db.collection(LIMITS).update_one({"_id": org_id}, update, upsert=True)
    return upload_limits(org_id)


# --- records ---------------------------------------------------------------------------------------


def insert_video(
    org_id: str,
    *,
    title: str,
    size_bytes: int,
    content_type: str,
    kind: Kind = "video",
    room_id: str | None = None,
    bucket: str | None = None,
    expires_at: datetime | None = None,
) -> Video:
    """Create a pending video (or recording) record and return it."""
    settings = media_settings()
    video_id = new_id("rec" if kind == "recording" else "vid")
    at = now()
    doc = {
        "_id": video_id,
        "orgId": org_id,
        "kind": kind,
        "title": title,
        "roomId": room_id,
        "status": "pending",
        "progress": 0,
        "message": "Waiting for the upload.",
        "sizeBytes": size_bytes,
        "contentType": content_type,
        "sourceBucket": bucket
        or (settings.recordings_bucket if kind == "recording" else settings.uploads_bucket),
        "sourceKey": source_key(org_id, video_id),
        "createdAt": at,
        "updatedAt": at,
        "expiresAt": expires_at,
        "attempt": 0,
    }
    with db.unavailable_on_failure():
        db.collection(VIDEOS).insert_one(doc)
    return Video.model_validate(doc)


def set_upload_id(org_id: str, video_id: str, upload_id: str) -> None:
    """Remember the multipart upload a video's source is being sent through."""
    with db.unavailable_on_failure():
        db.collection(VIDEOS).update_one(
            {"_id": video_id, "orgId": org_id}, {"$set": {"uploadId": upload_id}}
        )


def get_video(org_id: str, video_id: str, kind: Kind | None = None) -> Video:
    """One of the org's videos; NotFound for unknown ids and for other orgs' ids alike."""
    query: dict[str, Any] = {"_id": check_video_id(video_id), "orgId": org_id}
    if kind:
        query["kind"] = kind
    with db.unavailable_on_failure():
        found = _doc(db.collection(VIDEOS).find_one(query))
    if found is None:
        raise NotFound("No such recording." if kind == "recording" else "No such video.")
    return found


def find_video(video_id: str) -> Video | None:
    """A video by id alone (the transcoder checks the key's org against it)."""
    with db.unavailable_on_failure():
        return _doc(db.collection(VIDEOS).find_one({"_id": video_id}))


def videos_by_id(org_id: str, video_ids: list[str]) -> dict[str, Video]:
    """The org's videos among `video_ids`, by id, in one read (unknown and other orgs' ids are left out)."""
    with db.unavailable_on_failure():
        found = db.collection(VIDEOS).find({"_id": {"$in": list(video_ids)}})
        return {v.id: v for d in found if (v := _doc(d)) is not None and v.org_id == org_id}


def list_videos(
    org_id: str,
    *,
    kind: Kind | None = None,
    room_id: str | None = None,
    status: Status | None = None,
    limit: int = 50,
    before: datetime | None = None,
) -> list[Video]:
    """The org's videos, newest first."""
    query: dict[str, Any] = {"orgId": org_id}
    if kind:
        query["kind"] = kind
    if room_id:
        query["roomId"] = room_id
    if status:
        query["status"] = status
    if before:
        query["createdAt"] = {"$lt": before}
    with db.unavailable_on_failure():
        return [
            Video.model_validate(d)
            for d in db.collection(VIDEOS).find(query).sort([("createdAt", -1), ("_id", -1)]).limit(limit)
        ]


def storage_used(org_id: str) -> int:
    """Bytes the org's videos take: what S3 really holds for each (`storedBytes`: the source as the
    transcoder found it, plus the outputs once finished), or the declared size while the upload is
    only reserved."""
    total = {"$sum": {"$ifNull": ["$storedBytes", "$sizeBytes"]}}
    with db.unavailable_on_failure():
        rows = list(
            db.collection(VIDEOS).aggregate(
                [{"$match": {"orgId": org_id}}, {"$group": {"_id": None, "total": total}}]
            )
        )
    return int(rows[0]["total"]) if rows else 0


def record_stored_bytes(video: Video, stored: int) -> None:
    """Remember what the video really takes in S3 (a measured figure: writing it again is harmless)."""
    with db.unavailable_on_failure():
        db.collection(VIDEOS).update_one(
            {"_id": video.id, "orgId": video.org_id}, {"$set": {"storedBytes": int(stored)}}
        )


def purge(video: Video) -> None:
    """Delete a video everywhere: its outputs, captions and transcript, its source (or unfinished
    upload) and its record."""
    from verriflo import objects, transcripts

    settings = media_settings()
    objects.delete_prefix(settings.media_bucket, video.media_prefix)
    objects.delete_prefix(settings.media_bucket, transcripts.all_files_prefix(video.org_id, video.id))
    transcripts.delete(video.org_id, video.id)
    if video.upload_id:
        objects.abort_multipart(video.source_bucket, video.source_key, video.upload_id)
    objects.delete(video.source_bucket, video.source_key)
    delete_video(video.org_id, video.id)


def delete_video(org_id: str, video_id: str) -> bool:
    """Remove the record; True when it existed."""
    with db.unavailable_on_failure():
        return db.collection(VIDEOS).delete_one({"_id": video_id, "orgId": org_id}).deleted_count == 1


# --- the transcoder's state machine ------------------------------------------------------------------


def _lease() -> datetime:
    return now() + timedelta(seconds=media_settings().transcode_lease_s)


def claim(org_id: str, video_id: str, claimant: str) -> Video | None:
    """Take the video for transcoding, or None when someone else has it or it is done.

    The conditional update is the idempotency: a duplicate S3 event (another claimant) finds the
    video processing or completed and does nothing; a retry of the same invocation (same claimant,
    e.g. Lambda's async retry after a crash) or any worker after the lease ran out starts again.
    """
    from pymongo import ReturnDocument

    at = now()
    lease = at + timedelta(seconds=media_settings().transcode_lease_s)
    query = {
        "_id": video_id,
        "orgId": org_id,
        "$or": [
            {"status": "pending"},
            {"status": "processing", "claimedBy": claimant},
            {"status": "processing", "leaseUntil": {"$lt": at}},
        ],
    }
    update = {
        "$set": {
            "status": "processing",
            "claimedBy": claimant,
            "leaseUntil": lease,
            "progress": 0,
            "message": "Transcoding.",
            "playable": False,
            "renditions": [],
            "posterKey": None,
            "thumbnailKeys": [],
            "chunksDone": [],
            "chunksTotal": 0,
            "updatedAt": at,
        },
        "$inc": {"attempt": 1},
    }
    with db.unavailable_on_failure():
        return _doc(
            db.collection(VIDEOS).find_one_and_update(query, update, return_document=ReturnDocument.AFTER)
        )


def _fenced(video: Video, update: dict[str, Any], extra: dict[str, Any] | None = None) -> bool:
    query = {"_id": video.id, "orgId": video.org_id, "claimedBy": video.claimed_by, "status": "processing"}
    update.setdefault("$set", {})["updatedAt"] = now()
    with db.unavailable_on_failure():
        return db.collection(VIDEOS).update_one(query | (extra or {}), update).matched_count == 1


def record_probe(video: Video, duration_s: float, width: int, height: int) -> bool:
    """Store what the probe found."""
    return _fenced(video, {"$set": {"durationS": duration_s, "width": width, "height": height}})


def set_progress(video: Video, progress: int) -> bool:
    """Move progress forward (never back); False when the claim was lost."""
    query = {"_id": video.id, "orgId": video.org_id, "claimedBy": video.claimed_by, "status": "processing"}
    with db.unavailable_on_failure():
        coll = db.collection(VIDEOS)
        if coll.update_one(
            query | {"progress": {"$lt": progress}}, {"$set": {"progress": progress, "updatedAt": now()}}
        ).matched_count:
            return True
        return coll.count_documents(query, limit=1) == 1


def publish_renditions(
    video: Video, renditions: list[Rendition], poster_key: str | None, thumbnail_keys: list[str]
) -> bool:
    """Mark the video playable with the renditions whose playlists are already in the bucket."""
    return _fenced(
        video,
        {
            "$set": {
                "playable": True,
                "renditions": [r.model_dump() for r in renditions],
                "posterKey": poster_key,
                "thumbnailKeys": thumbnail_keys,
                "message": "Playable; the rest of the ladder is on its way.",
            }
        },
    )


def set_chunks(video: Video, total: int) -> bool:
    """Record how many chunks the chunked path will transcode."""
    return _fenced(video, {"$set": {"chunksTotal": total, "chunksDone": [], "earlyChunks": 0}})


def chunks_done(video: Video) -> list[int]:
    """The chunks finished so far (of the current claim; [] when it was lost)."""
    query = {"_id": video.id, "orgId": video.org_id, "claimedBy": video.claimed_by, "status": "processing"}
    with db.unavailable_on_failure():
        doc = db.collection(VIDEOS).find_one(query, {"chunksDone": 1})
    return list((doc or {}).get("chunksDone") or [])


def raise_early_chunks(video: Video, count: int) -> int | None:
    """Claim publishing the first `count` chunks early: the count published before, or None when
    as many or more are already out (or the claim was lost)."""
    from pymongo import ReturnDocument

    query = {
        "_id": video.id,
        "orgId": video.org_id,
        "claimedBy": video.claimed_by,
        "status": "processing",
        "earlyChunks": {"$lt": count},
    }
    with db.unavailable_on_failure():
        before = db.collection(VIDEOS).find_one_and_update(
            query, {"$set": {"earlyChunks": count}}, return_document=ReturnDocument.BEFORE
        )
    return None if before is None else int(before.get("earlyChunks") or 0)


def early_chunks(video: Video) -> int:
    """How many leading chunks are published early (0: none)."""
    with db.unavailable_on_failure():
        doc = db.collection(VIDEOS).find_one({"_id": video.id, "orgId": video.org_id}, {"earlyChunks": 1})
    return int((doc or {}).get("earlyChunks") or 0)


def chunk_done(video: Video, index: int) -> int:
    """Mark one chunk finished; returns the progress it implies (0-99)."""
    from pymongo import ReturnDocument

    query = {"_id": video.id, "orgId": video.org_id, "claimedBy": video.claimed_by, "status": "processing"}
    with db.unavailable_on_failure():
        doc = db.collection(VIDEOS).find_one_and_update(
            query,
            # each finished chunk renews the lease: a long chunked run is alive, not stalled
            {"$addToSet": {"chunksDone": index}, "$set": {"updatedAt": now(), "leaseUntil": _lease()}},
            return_document=ReturnDocument.AFTER,
        )
    if not doc:
        return -1
    progress = min(99, int(100 * len(doc.get("chunksDone", [])) / max(1, doc.get("chunksTotal") or 1)))
    set_progress(video, progress)
    return progress


def complete(
    video: Video,
    renditions: list[Rendition],
    poster_key: str | None,
    thumbnail_keys: list[str],
    effects: list[dict[str, Any]] | None = None,
) -> bool:
    """The whole ladder is published; `effects` (verriflo.outbox) are recorded in the same update."""
    at = now()
    return _fenced(
        video,
        outbox.with_effects(
            {
                "$set": {
                    "status": "completed",
                    "progress": 100,
                    "playable": True,
                    "renditions": [r.model_dump() for r in renditions],
                    "posterKey": poster_key,
                    "thumbnailKeys": thumbnail_keys,
                    "message": "Ready to play.",
                    "completedAt": at,
                    "leaseUntil": None,
                }
            },
            effects or [],
        ),
    )


def fail(video: Video, message: str, effects: list[dict[str, Any]] | None = None) -> bool:
    """Give up on the video with a message its owner can act on (`effects` as for `complete`)."""
    return _fenced(
        video,
        outbox.with_effects(
            {
                "$set": {
                    "status": "failed",
                    "playable": False,
                    "renditions": [],
                    "posterKey": None,
                    "thumbnailKeys": [],
                    "message": message,
                    "leaseUntil": None,
                }
            },
            effects or [],
        ),
    )


def fail_unclaimed(
    org_id: str, video_id: str, message: str, effects: list[dict[str, Any]] | None = None
) -> bool:
    """Fail a pending video before any claim (e.g. an upload that never came), recording `effects`
    (as for `complete`) in the same update."""
    with db.unavailable_on_failure():
        return (
            db.collection(VIDEOS)
            .update_one(
                {"_id": video_id, "orgId": org_id, "status": "pending"},
                outbox.with_effects(
                    {"$set": {"status": "failed", "message": message, "updatedAt": now()}}, effects or []
                ),
            )
            .matched_count
            == 1
        )


# --- recordings (called by functions/rooms) ----------------------------------------------------------


def register_recording(
    org_id: str,
    room_id: str,
    *,
    title: str = "",
    egress_id: str | None = None,
    ended_at: datetime | None = None,
) -> Video:
    """A recording record for a room; Egress should write the file to `recordings_bucket`/`sourceKey`.

    The file's arrival in the recordings bucket starts the same transcode as an upload; the record
    (and its media) is deleted `recording_retention_hours` after the class ended.
    """
    video = insert_video(
        org_id,
        title=title or f"Recording of {room_id}",
        size_bytes=0,
        content_type="video/mp4",
        kind="recording",
        room_id=room_id,
        expires_at=_retention_end(ended_at) if ended_at else _room_retention_end(org_id, room_id, now()),
    )
    if egress_id:
        with db.unavailable_on_failure():
            db.collection(VIDEOS).update_one({"_id": video.id}, {"$set": {"egressId": egress_id}})
    return video


def _retention_end(ended_at: datetime) -> datetime:
    return ended_at + timedelta(hours=media_settings().recording_retention_hours)


def _room_retention_end(org_id: str, room_id: str, fallback: datetime) -> datetime | None:
    """When a room's recordings expire: the retention after its class ended; None while the class
    is open (`class_ended` sets it when the class ends); from `fallback` for a room with no record."""
    with db.unavailable_on_failure():
        room = db.collection(ROOMS).find_one(
            {"orgId": org_id, "roomId": room_id}, {"status": 1, "endedAt": 1}
        )
    if room is not None and room.get("status") != "ended":
        return None
    return _retention_end((room or {}).get("endedAt") or fallback)


def recording_location(org_id: str, room_id: str, bucket: str | None, key: str | None) -> bool:
    """Whether `bucket`/`key` is where our API records a class of this org's room: the recordings
    bucket, under `recordings/<orgId>/<roomId>/`, in the key shape it names (RECORDING_KEY)."""
    found = RECORDING_KEY.fullmatch(key or "")
    return (
        found is not None
        and bucket == media_settings().recordings_bucket
        and found["org"] == org_id
        and found["room"] == room_id
    )


def started_recording(org_id: str, room_id: str, bucket: str, key: str) -> str | None:
    """The egress id of the recording our API started to write exactly this object, or None: an
    object under `recordings/<org>/...` is a recording of that org only if the rooms API asked for it
    (LiveKit's Egress can be told to write anywhere by whoever holds the project's `roomRecord`)."""
    if not recording_location(org_id, room_id, bucket, key):
        return None
    with db.unavailable_on_failure():
        found = db.collection(STARTED_RECORDINGS).find_one(
            {"orgId": org_id, "roomId": room_id, "bucket": bucket, "key": key}, {"_id": 1}
        )
    return found["_id"] if found else None


def recording_video_id(key: str | None) -> str | None:
    """The video id the transcoder gives the Egress file at `key` (`rec_<file>`), known before the
    file arrives; None for a key that is no recording key."""
    found = RECORDING_KEY.fullmatch(key or "")
    return f"rec_{found['file']}" if found else None


def ensure_recording(
    org_id: str, room_id: str, file_id: str, bucket: str, key: str, egress_id: str | None = None
) -> Video:
    """The recording record of an Egress file (created on its arrival, once: get-or-create)."""
    from pymongo.errors import DuplicateKeyError

    at = now()
    doc = {
        "_id": f"rec_{file_id}",
        "orgId": org_id,
        "kind": "recording",
        "title": f"Recording of {room_id}",
        "roomId": room_id,
        "status": "pending",
        "progress": 0,
        "message": "Recorded; waiting to transcode.",
        "sizeBytes": 0,
        "contentType": "video/mp4",
        "sourceBucket": bucket,
        "sourceKey": key,
        "egressId": egress_id,
        "createdAt": at,
        "updatedAt": at,
        "attempt": 0,
        # Egress writes the file while the class runs: counting retention from its arrival would
        # delete a long class's recording before the class is over.
        "expiresAt": _room_retention_end(org_id, room_id, at),
    }
    with db.unavailable_on_failure():
        try:
            db.collection(VIDEOS).insert_one(doc)
        except DuplicateKeyError:
            pass
    if doc["expiresAt"] is None:
        # The class may have ended between the look-up above and the insert, its `class_ended`
        # update missing this record: look again (a no-op once the expiry is set).
        expires = _room_retention_end(org_id, room_id, at)
        if expires is not None:
            with db.unavailable_on_failure():
                db.collection(VIDEOS).update_one(
                    {"_id": doc["_id"], "orgId": org_id, "expiresAt": None}, {"$set": {"expiresAt": expires}}
                )
    with db.unavailable_on_failure():
        return Video.model_validate(db.collection(VIDEOS).find_one({"_id": doc["_id"], "orgId": org_id}))


def class_ended(org_id: str, room_id: str, ended_at: datetime | None = None) -> int:
    """Start the retention clock of a room's recordings at the end of class; returns how many."""
    expires = _retention_end(ended_at or now())
    with db.unavailable_on_failure():
        return (
            db.collection(VIDEOS)
            .update_many(
                {"orgId": org_id, "kind": "recording", "roomId": room_id}, {"$set": {"expiresAt": expires}}
            )
            .modified_count
        )


def list_recordings(org_id: str, room_id: str) -> list[Video]:
    """A room's recordings, newest first."""
    return list_videos(org_id, kind="recording", room_id=room_id, limit=200)


def get_recording(org_id: str, recording_id: str) -> Video:
    """One of the org's recordings; NotFound for other orgs' ids."""
    return get_video(org_id, recording_id, kind="recording")


def recording_videos(org_id: str, room_id: str, keys: list[str | None]) -> dict[str, Video]:
    """The videos of a room's Egress files at `keys` that arrived (one query), by file key."""
    ids = {recording_video_id(k): k for k in keys if recording_video_id(k)}
    if not ids:
        return {}
    query = {"_id": {"$in": sorted(ids)}, "orgId": org_id, "kind": "recording", "roomId": room_id}
    with db.unavailable_on_failure():
        found = [Video.model_validate(d) for d in db.collection(VIDEOS).find(query)]
    return {ids[v.id]: v for v in found}


def pending_since(before: datetime, limit: int = 200) -> list[Video]:
    """Videos and recordings still `pending` that were created before `before`, oldest first."""
    with db.unavailable_on_failure():
        found = (
            db.collection(VIDEOS)
            .find({"status": "pending", "createdAt": {"$lt": before}})
            .sort([("createdAt", 1), ("_id", 1)])
            .limit(limit)
        )
        return [Video.model_validate(d) for d in found]


def take_redispatch(video: Video, *, most: int, quiet_since: datetime, at: datetime) -> bool:
    """Claim one more start (at `at`) of a pending video's transcode: False once `most` were taken,
    or when one was taken after `quiet_since` (it may still be on its way)."""
    query = {
        "_id": video.id,
        "orgId": video.org_id,
        "status": "pending",
        "$and": [
            {"$or": [{"redispatches": {"$exists": False}}, {"redispatches": {"$lt": most}}]},
            {"$or": [{"redispatchedAt": {"$exists": False}}, {"redispatchedAt": {"$lt": quiet_since}}]},
        ],
    }
    update = {"$inc": {"redispatches": 1}, "$set": {"redispatchedAt": at, "updatedAt": now()}}
    with db.unavailable_on_failure():
        return db.collection(VIDEOS).update_one(query, update).matched_count == 1


def redispatches_spent(video: Video, most: int, *, quiet_since: datetime) -> bool:
    """Whether every start of a pending video's transcode allowed was taken, the last one before
    `quiet_since` (it had its time)."""
    with db.unavailable_on_failure():
        doc = db.collection(VIDEOS).find_one(
            {"_id": video.id, "orgId": video.org_id}, {"redispatches": 1, "redispatchedAt": 1}
        )
    doc = doc or {}
    last = doc.get("redispatchedAt")
    return int(doc.get("redispatches") or 0) >= most and (last is None or last < quiet_since)


def stalled(grace_s: float = 300, limit: int = 100) -> list[Video]:
    """Videos still `processing` well after their claim's lease ran out: every retry is spent."""
    cutoff = now() - timedelta(seconds=grace_s)
    with db.unavailable_on_failure():
        found = (
            db.collection(VIDEOS).find({"status": "processing", "leaseUntil": {"$lt": cutoff}}).limit(limit)
        )
        return [Video.model_validate(d) for d in found]


def expired_recordings(at: datetime | None = None, limit: int = 200) -> list[Video]:
    """Recordings whose retention ran out. A recording whose room is still open is never one: its
    expiry (from before retention counted from the end of class) is cleared, and the end of the
    class sets it again."""
    with db.unavailable_on_failure():
        found = [
            Video.model_validate(d)
            for d in db.collection(VIDEOS)
            .find({"kind": "recording", "expiresAt": {"$lte": at or now()}})
            .limit(limit)
        ]
        rooms = {(v.org_id, v.room_id) for v in found}
        open_rooms = {
            (r["orgId"], r["roomId"])
            for r in db.collection(ROOMS).find(
                {
                    "$or": [{"orgId": o, "roomId": r} for o, r in rooms] or [{"_id": None}],
                    "status": {"$ne": "ended"},
                },
                {"orgId": 1, "roomId": 1},
            )
        }
        held = [v for v in found if (v.org_id, v.room_id) in open_rooms]
        for video in held:
            # Only the expiry we read: one the end of class wrote meanwhile stays.
            db.collection(VIDEOS).update_one(
                {"_id": video.id, "kind": "recording", "expiresAt": video.expires_at},
                {"$set": {"expiresAt": None}},
            )
    return [v for v in found if v not in held]


# --- storage metering (the billing sweep charges stored media per GB-day) --------------------------


def unmetered_storage(day: str, after: str | None = None, limit: int = 500) -> list[Video]:
    """Videos and recordings S3 holds bytes of (`storedBytes`, measured by the transcoder) whose
    storage for `day` (YYYY-MM-DD, UTC) is not charged yet, by id after `after`."""
    query: dict[str, Any] = {"storedBytes": {"$gt": 0}, "storageMeteredOn": {"$ne": day}}
    if after is not None:
        query["_id"] = {"$gt": after}
    with db.unavailable_on_failure():
        found = db.collection(VIDEOS).find(query).sort("_id", 1).limit(limit)
        return [Video.model_validate(d) for d in found]


def storage_metered(video: Video, day: str) -> None:
    """Remember that `day`'s storage of the video is in the ledger (the ledger's entry id is the
    guard; this only spares the next sweep of the day the look)."""
    with db.unavailable_on_failure():
        db.collection(VIDEOS).update_one(
            {"_id": video.id, "orgId": video.org_id}, {"$set": {"storageMeteredOn": day}}
        )
