"""Captions and transcripts: the `video_transcripts` collection (the transcript contract the video
search reads) and each video's captions state, kept in its `videos` document (`captions`).

The data-access module of captions: the captions function (`functions/captions`) and the cdn's
captions routes write only through it. The captions state lives in the video's own document, so
the update that makes captions ready records the charge and `video.captions_ready` in the same
write (verriflo.outbox), exactly as the transcoder's `completed` does; its S3 files live under
`captions/<orgId>/<videoId>/<revision>/` in the media bucket, apart from the transcoder's prefix
(a transcode retry starts clean by deleting that prefix, and must not take the captions with it).

`captions.status`: `pending` (being made), `ready`, `failed` (with `reason`), `none` (no speech,
or no audio track). A video whose transcode never started captions has no state: read as
`pending` while the video is, else `none`.
"""

# No `from __future__ import annotations`: pydantic would evaluate each string annotation as it
# creates every model class below, a cost every cold start pays.

from __future__ import annotations

from datetime import datetime, timedelta
from functools import cache
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from verriflo import db, media, outbox
from verriflo.errors import NotFound
from verriflo.orgs import now
from verriflo.settings import EnvSettings, SettingsConfigDict

TRANSCRIPTS = "video_transcripts"
CaptionsStatus = Literal["pending", "ready", "failed", "none"]
Source = Literal["auto", "upload"]


class CaptionsSettings(EnvSettings):
    """Captioning's bounds and where its worker is."""

    model_config = SettingsConfigDict(env_prefix="CAPTIONS_", extra="ignore")

    function_name: str | None = Field(
        default=None, description="the captions worker, started beside the transcode"
    )
    max_duration_s: float = Field(
        default=3 * 3600, gt=0, description="longer videos get no automatic captions"
    )
    lease_s: int = Field(
        default=960, ge=30, description="a captioning claim older than this may be taken over"
    )
    segment_s: float = Field(default=4, gt=0, description="HLS subtitle segment length (the video's)")
    max_upload_bytes: int = Field(default=2 * 1024 * 1024, ge=1024, description="largest owner .vtt")


@cache
def captions_settings() -> CaptionsSettings:
    """The captions settings, read once per process."""
    return CaptionsSettings()


def _indexes():
    from pymongo import ASCENDING, IndexModel

    return [IndexModel([("orgId", ASCENDING), ("videoId", ASCENDING)], unique=True)]


db.register_indexes(TRANSCRIPTS, _indexes)


class TranscriptSegment(BaseModel):
    """A sentence and when it is said (seconds from the video's start)."""

    model_config = ConfigDict(defer_build=True, populate_by_name=True)

    start_s: float = Field(alias="startS")
    end_s: float = Field(alias="endS")
    text: str


class Transcript(BaseModel):
    """One video's transcript as stored (the contract the video search consumes)."""

    model_config = ConfigDict(defer_build=True, populate_by_name=True)

    id: str = Field(alias="_id")
    org_id: str = Field(alias="orgId")
    video_id: str = Field(alias="videoId")
    kind: Literal["upload", "recording"]
    room_id: str | None = Field(default=None, alias="roomId")
    title: str = ""
    source: Source
    language: str = "en"
    duration_s: float = Field(alias="durationS")
    segments: list[TranscriptSegment]
    created_at: datetime = Field(alias="createdAt")
    updated_at: datetime = Field(alias="updatedAt")


class CaptionsState(BaseModel):
    """A video's captions as stored in its document (`captions`)."""

    model_config = ConfigDict(defer_build=True, populate_by_name=True, extra="ignore")

    status: CaptionsStatus
    reason: str | None = None
    source: Source | None = None
    language: str | None = None
    prefix: str | None = None
    revision: int = 0
    mpegts: int | None = None
    updated_at: datetime | None = Field(default=None, alias="updatedAt")


def state(video: media.Video) -> CaptionsState:
    """The video's captions state (a video whose transcode has not started is `pending`)."""
    if video.captions:
        return CaptionsState.model_validate(video.captions)
    return CaptionsState(status="pending" if video.status in ("pending", "processing") else "none")


def files_prefix(org_id: str, video_id: str, revision: str) -> str:
    """Where one revision of a video's captions lives in the media bucket (ends with `/`)."""
    return f"captions/{org_id}/{video_id}/{revision}/"


def all_files_prefix(org_id: str, video_id: str) -> str:
    """Every revision of a video's captions (deleted with the video)."""
    return f"captions/{org_id}/{video_id}/"


# --- the captions state (in the video's document) ---------------------------------------------------


def _video_query(video: media.Video) -> dict[str, Any]:
    return {"_id": video.id, "orgId": video.org_id}


def start(video: media.Video, *, has_audio: bool) -> bool:
    """Captions begin with the transcode: `pending` (True: start the worker) for a video with an
    audio track, `none` for one without; a video that already has a captions state keeps it (a
    transcode retry does not caption twice)."""
    at = now()
    value = (
        {"status": "pending", "updatedAt": at}
        if has_audio
        else {"status": "none", "reason": "The video has no audio track.", "updatedAt": at}
    )
    with db.unavailable_on_failure():
        changed = (
            db.collection(media.VIDEOS)
            .update_one(_video_query(video) | {"captions": None}, {"$set": {"captions": value}})
            .matched_count
        )
    return bool(changed) and has_audio


def give_up(video: media.Video, reason: str) -> None:
    """Pending captions that will not be made (their worker could not be started)."""
    value = {"status": "failed", "reason": reason, "updatedAt": now()}
    with db.unavailable_on_failure():
        db.collection(media.VIDEOS).update_one(
            _video_query(video) | {"captions.status": "pending"}, {"$set": {"captions": value}}
        )


def fail_stalled(at: datetime | None = None, limit: int = 200) -> int:
    """Captions still `pending` long after any worker could hold them (twice the lease, with no
    claim renewed: the invocation was lost or spent its retries) end `failed`; returns how many."""
    cutoff = (at or now()) - timedelta(seconds=2 * captions_settings().lease_s)
    value = {
        "status": "failed",
        "reason": "Captioning did not finish; upload a .vtt instead.",
        "updatedAt": now(),
    }
    query = {"captions.status": "pending", "captions.updatedAt": {"$lt": cutoff}}
    with db.unavailable_on_failure():
        stale = [d["_id"] for d in db.collection(media.VIDEOS).find(query, {"_id": 1}).limit(limit)]
        return sum(
            db.collection(media.VIDEOS)
            .update_one({"_id": key} | query, {"$set": {"captions": value}})
            .modified_count
            for key in stale
        )


def claim(org_id: str, video_id: str, claimant: str) -> media.Video | None:
    """Take a video's pending captions, or None (done, someone else holds them, or no such video).
    The same claimant (a Lambda retry of the same request) or anyone after the lease takes it."""
    from pymongo import ReturnDocument

    at = now()
    query = {
        "_id": video_id,
        "orgId": org_id,
        "captions.status": "pending",
        "$or": [
            {"captions.claimedBy": None},
            {"captions.claimedBy": claimant},
            {"captions.leaseUntil": {"$lt": at}},
        ],
    }
    lease = at + timedelta(seconds=captions_settings().lease_s)
    update = {
        "$set": {"captions.claimedBy": claimant, "captions.leaseUntil": lease, "captions.updatedAt": at}
    }
    with db.unavailable_on_failure():
        doc = db.collection(media.VIDEOS).find_one_and_update(
            query, update, return_document=ReturnDocument.AFTER
        )
    return media.Video.model_validate(doc) if doc else None


def _claimed(video_id: str, org_id: str, claimant: str) -> dict[str, Any]:
    return {"_id": video_id, "orgId": org_id, "captions.status": "pending", "captions.claimedBy": claimant}


def settle(
    org_id: str,
    video_id: str,
    claimant: str,
    value: dict[str, Any],
    effects: list[dict[str, Any]] | None = None,
) -> bool:
    """End a claimed captioning (`value`: the new captions state), recording `effects` in the same
    update; False when the claim is gone (an owner's upload replaced it, or it was taken over)."""
    update = outbox.with_effects({"$set": {"captions": value | {"updatedAt": now()}}}, effects or [])
    with db.unavailable_on_failure():
        return (
            db.collection(media.VIDEOS).update_one(_claimed(video_id, org_id, claimant), update).matched_count
            == 1
        )


def next_revision(video: media.Video) -> int:
    """A new revision number for an owner's upload (each replacement its own files and event)."""
    from pymongo import ReturnDocument

    with db.unavailable_on_failure():
        doc = db.collection(media.VIDEOS).find_one_and_update(
            _video_query(video), {"$inc": {"captionsRevisions": 1}}, return_document=ReturnDocument.AFTER
        )
    if doc is None:
        raise NotFound("No such video.")
    return int(doc["captionsRevisions"])


def replace(video: media.Video, value: dict[str, Any], effects: list[dict[str, Any]]) -> bool:
    """Owner's captions replace whatever there was (a pending automatic run's claim goes with it,
    so its late finish changes nothing); False when the video is gone or a newer upload is in."""
    query = _video_query(video) | {
        "$or": [{"captions.revision": {"$lt": value["revision"]}}, {"captions.revision": None}]
    }
    update = outbox.with_effects({"$set": {"captions": value | {"updatedAt": now()}}}, effects)
    with db.unavailable_on_failure():
        return db.collection(media.VIDEOS).update_one(query, update).matched_count == 1


# --- transcripts ----------------------------------------------------------------------------------


def save(
    video: media.Video,
    segments: list[TranscriptSegment],
    *,
    source: Source,
    duration_s: float,
    language: str = "en",
) -> Transcript | None:
    """Write (or replace) the video's transcript; None when an automatic one would replace an
    owner's upload (the owner's words win)."""
    from pymongo.errors import DuplicateKeyError

    at = now()
    fields = {
        "orgId": video.org_id,
        "videoId": video.id,
        "kind": "recording" if video.kind == "recording" else "upload",
        "roomId": video.room_id,
        "title": video.title,
        "source": source,
        "language": language,
        "durationS": round(float(duration_s), 3),
        "segments": [s.model_dump(by_alias=True) for s in segments],
        "updatedAt": at,
    }
    query: dict[str, Any] = {"_id": video.id, "orgId": video.org_id}
    if source == "auto":
        query["source"] = {"$ne": "upload"}
    with db.unavailable_on_failure():
        try:
            db.collection(TRANSCRIPTS).update_one(
                query, {"$set": fields, "$setOnInsert": {"createdAt": at}}, upsert=True
            )
        except DuplicateKeyError:  # the owner's transcript is there: the upsert's insert collided
            return None
    return get(video.org_id, video.id)


def get(org_id: str, video_id: str) -> Transcript:
    """One of the org's transcripts; NotFound for unknown ids and other orgs' alike."""
    with db.unavailable_on_failure():
        doc = db.collection(TRANSCRIPTS).find_one({"_id": media.check_video_id(video_id), "orgId": org_id})
    if doc is None:
        raise NotFound("This video has no transcript.")
    return Transcript.model_validate(doc)


def delete(org_id: str, video_id: str) -> None:
    """Forget a video's transcript (its video is gone)."""
    with db.unavailable_on_failure():
        db.collection(TRANSCRIPTS).delete_one({"_id": video_id, "orgId": org_id})
