"""The video search index in MongoDB: the time-coded passages of each video's transcript with their
vectors, one state record per indexed video, and a version counter per org.

It reads the transcripts (`video_transcripts`, written only by the captions pipeline, one document
per video: `segments[{startS, endS, text}]`, `updatedAt`) and writes only its own collections:

- `video_passages`: `{_id: <videoId>:<transcript stamp>:<ordinal>, orgId, videoId, stamp, ordinal,
  startS, endS, text, vector (float32 bytes), segments[{startS, endS, text}], sentenceVectors
  (float32 bytes, one row per segment), pending?}`. Ids follow from the transcript version, so a
  retried attempt rewrites the same rows; rows are `pending` (never searched) until `install` swaps
  them in.
- `video_index`: `{_id: <videoId>, orgId, stamp, passages, title, kind, roomId, indexedAt}`.
- `video_index_versions`: `{_id: <orgId>, version}`, incremented by every change of the org's index:
  in-memory search matrices compare it to know when to reload (as knowledge bases do).

Every query filters by `orgId`.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from verriflo import db

TRANSCRIPTS, PASSAGES, INDEX, VERSIONS = (
    "video_transcripts",
    "video_passages",
    "video_index",
    "video_index_versions",
)


def _indexes_passages():
    from pymongo import ASCENDING, IndexModel

    return [IndexModel([("orgId", ASCENDING), ("videoId", ASCENDING)])]


def _indexes_index():
    from pymongo import ASCENDING, IndexModel

    return [IndexModel([("orgId", ASCENDING), ("roomId", ASCENDING)])]


db.register_indexes(PASSAGES, _indexes_passages)
db.register_indexes(INDEX, _indexes_index)


class Segment(BaseModel):
    """One sentence of a transcript, in seconds from the start of the video."""

    model_config = ConfigDict(defer_build=True, populate_by_name=True)

    start_s: float = Field(alias="startS")
    end_s: float = Field(alias="endS")
    text: str


class Transcript(BaseModel):
    """A video's transcript as the captions pipeline stores it (the fields the index reads)."""

    model_config = ConfigDict(defer_build=True, populate_by_name=True, extra="ignore")

    video_id: str = Field(alias="_id")
    org_id: str = Field(alias="orgId")
    kind: str = "upload"
    room_id: str | None = Field(default=None, alias="roomId")
    title: str = ""
    language: str = "en"
    duration_s: float | None = Field(default=None, alias="durationS")
    segments: list[Segment] = Field(default_factory=list)
    updated_at: datetime = Field(alias="updatedAt")


class IndexedVideo(BaseModel):
    """What the index holds for one video: which transcript version, and how it is shown."""

    model_config = ConfigDict(defer_build=True, populate_by_name=True, extra="ignore")

    video_id: str = Field(alias="_id")
    org_id: str = Field(alias="orgId")
    stamp: str
    passages: int
    title: str = ""
    kind: str = "upload"
    room_id: str | None = Field(default=None, alias="roomId")
    indexed_at: datetime = Field(alias="indexedAt")


class PassageRow(BaseModel):
    """One stored passage (`vector`, `sentence_vectors`: raw float32 bytes)."""

    model_config = ConfigDict(defer_build=True, populate_by_name=True, extra="ignore")

    id: str = Field(alias="_id")
    org_id: str = Field(alias="orgId")
    video_id: str = Field(alias="videoId")
    stamp: str
    ordinal: int
    start_s: float = Field(alias="startS")
    end_s: float = Field(alias="endS")
    text: str
    vector: bytes
    segments: list[Segment] = Field(default_factory=list)
    sentence_vectors: bytes = Field(default=b"", alias="sentenceVectors")
    pending: bool = False


def get_transcript(org_id: str, video_id: str) -> Transcript | None:
    """The video's current transcript, or None (never written, or deleted with its video)."""
    with db.unavailable_on_failure():
        doc = db.collection(TRANSCRIPTS).find_one({"_id": video_id, "orgId": org_id})
    return Transcript.model_validate(doc) if doc else None


def get_indexed(org_id: str, video_id: str) -> IndexedVideo | None:
    """What the index holds for the video, or None."""
    with db.unavailable_on_failure():
        doc = db.collection(INDEX).find_one({"_id": video_id, "orgId": org_id})
    return IndexedVideo.model_validate(doc) if doc else None


def indexed_videos(
    org_id: str, video_ids: list[str] | None = None, room_ids: list[str] | None = None
) -> list[IndexedVideo]:
    """The org's indexed videos (all, the named ones, or those recorded in the named rooms)."""
    query: dict[str, Any] = {"orgId": org_id}
    if video_ids is not None:
        query["_id"] = {"$in": video_ids}
    if room_ids is not None:
        query["roomId"] = {"$in": room_ids}
    with db.unavailable_on_failure():
        return [IndexedVideo.model_validate(d) for d in db.collection(INDEX).find(query)]


def version(org_id: str) -> int:
    """The org's index version (0 before anything was indexed)."""
    with db.unavailable_on_failure():
        doc = db.collection(VERSIONS).find_one({"_id": org_id})
    return int(doc["version"]) if doc else 0


def _stored(row: PassageRow) -> dict[str, Any]:
    from bson import Binary

    doc = row.model_dump(by_alias=True)
    doc["vector"] = Binary(row.vector)
    doc["sentenceVectors"] = Binary(row.sentence_vectors)
    return doc


def write_pending(rows: list[PassageRow]) -> None:
    """Write passages by id, marked pending: the same passage written twice is one row."""
    from pymongo import ReplaceOne

    if not rows:
        return
    with db.unavailable_on_failure():
        db.collection(PASSAGES).bulk_write(
            [ReplaceOne({"_id": r.id}, _stored(r) | {"pending": True}, upsert=True) for r in rows],
            ordered=False,
        )


class _Superseded(Exception):
    """A newer transcript was indexed meanwhile, or the transcript is gone: nothing is installed."""


def install(transcript: Transcript, stamp: str, passages: int, at: datetime) -> str:
    """Make one transcript version's pending passages the video's index, in one transaction: drop
    every other version's passages, record the version and bump the org's index version.

    `installed` when this call did it, `done` when that version was already installed, `stale`
    when a newer version is installed or the transcript was deleted meanwhile (this version's
    passages are then removed)."""
    org_id, video_id = transcript.org_id, transcript.video_id

    def work(session: Any) -> str:
        current = db.collection(INDEX).find_one({"_id": video_id, "orgId": org_id}, session=session)
        if current is not None and current["stamp"] == stamp:
            return "done"
        if current is not None and current["stamp"] > stamp:
            raise _Superseded
        still = db.collection(TRANSCRIPTS).find_one(
            {"_id": video_id, "orgId": org_id}, {"updatedAt": 1}, session=session
        )
        if still is None:
            raise _Superseded
        passages_ = db.collection(PASSAGES)
        passages_.delete_many(
            {"orgId": org_id, "videoId": video_id, "stamp": {"$ne": stamp}}, session=session
        )
        passages_.update_many(
            {"orgId": org_id, "videoId": video_id, "stamp": stamp},
            {"$unset": {"pending": ""}},
            session=session,
        )
        record = {
            "orgId": org_id,
            "stamp": stamp,
            "passages": passages,
            "title": transcript.title,
            "kind": transcript.kind,
            "roomId": transcript.room_id,
            "indexedAt": at,
        }
        db.collection(INDEX).replace_one(
            {"_id": video_id}, {"_id": video_id} | record, upsert=True, session=session
        )
        db.collection(VERSIONS).update_one(
            {"_id": org_id}, {"$inc": {"version": 1}}, upsert=True, session=session
        )
        return "installed"

    try:
        return db.in_transaction(work)
    except _Superseded:
        with db.unavailable_on_failure():
            db.collection(PASSAGES).delete_many(
                {"orgId": org_id, "videoId": video_id, "stamp": stamp, "pending": True}
            )
        return "stale"


def remove(org_id: str, video_id: str) -> bool:
    """Drop a video from the index (its passages and record); True when it had anything. Removing
    twice is harmless; the org's version moves only when something went."""
    with db.unavailable_on_failure():
        record = db.collection(INDEX).delete_one({"_id": video_id, "orgId": org_id}).deleted_count
        rows = db.collection(PASSAGES).delete_many({"orgId": org_id, "videoId": video_id}).deleted_count
        if record or rows:
            db.collection(VERSIONS).update_one({"_id": org_id}, {"$inc": {"version": 1}}, upsert=True)
    return bool(record or rows)


def iter_passages(org_id: str, video_ids: list[str] | None = None) -> Iterator[dict[str, Any]]:
    """The org's searchable passages with their vectors, without their sentences (to build the
    in-memory matrix)."""
    query: dict[str, Any] = {"orgId": org_id, "pending": {"$ne": True}}
    if video_ids is not None:
        query["videoId"] = {"$in": video_ids}
    with db.unavailable_on_failure():
        yield from db.collection(PASSAGES).find(
            query,
            {"_id": 1, "videoId": 1, "ordinal": 1, "startS": 1, "endS": 1, "text": 1, "vector": 1},
            batch_size=2000,
        )


def sentences(org_id: str, passage_ids: list[str]) -> dict[str, tuple[list[Segment], bytes]]:
    """Each named passage of the org: its sentences and their vectors (to place a moment within a
    passage)."""
    # By `_id` alone, the org checked on each row: a filter on fields outside the `_id` index is a
    # collection scan on the local MongoDB-wire server (MongoDB uses the `_id` index either way).
    with db.unavailable_on_failure():
        found = db.collection(PASSAGES).find(
            {"_id": {"$in": passage_ids}}, {"orgId": 1, "segments": 1, "sentenceVectors": 1}
        )
        return {
            d["_id"]: (
                [Segment.model_validate(s) for s in d.get("segments", [])],
                bytes(d.get("sentenceVectors", b"")),
            )
            for d in found
            if d.get("orgId") == org_id
        }


# --- videos in knowledge bases --------------------------------------------------------------------

KB_VIDEOS = "kb_videos"


def _indexes_kb_videos():
    from pymongo import ASCENDING, IndexModel

    return [IndexModel([("orgId", ASCENDING), ("kbId", ASCENDING), ("addedAt", ASCENDING)])]


db.register_indexes(KB_VIDEOS, _indexes_kb_videos)


class KbVideo(BaseModel):
    """A video a knowledge base draws on (by reference: its index follows the video's transcript)."""

    model_config = ConfigDict(defer_build=True, populate_by_name=True, extra="ignore")

    id: str = Field(alias="_id")  # <kbId>:<videoId>
    org_id: str = Field(alias="orgId")
    kb_id: str = Field(alias="kbId")
    video_id: str = Field(alias="videoId")
    title: str = ""
    added_at: datetime = Field(alias="addedAt")


def add_kb_video(entry: KbVideo) -> bool:
    """Put a video in a knowledge base; False when it already was there (nothing changes)."""
    from pymongo.errors import DuplicateKeyError

    try:
        with db.unavailable_on_failure():
            db.collection(KB_VIDEOS).insert_one(entry.model_dump(by_alias=True))
    except DuplicateKeyError:
        return False
    return True


def kb_videos(org_id: str, kb_ids: list[str]) -> list[KbVideo]:
    """The videos of the org's named knowledge bases, oldest first."""
    with db.unavailable_on_failure():
        found = db.collection(KB_VIDEOS).find({"orgId": org_id, "kbId": {"$in": kb_ids}}).sort("addedAt", 1)
        return [KbVideo.model_validate(d) for d in found]


def remove_kb_video(org_id: str, kb_id: str, video_id: str) -> bool:
    """Take a video out of a knowledge base; True when it was there."""
    with db.unavailable_on_failure():
        gone = db.collection(KB_VIDEOS).delete_one({"_id": f"{kb_id}:{video_id}", "orgId": org_id})
    return bool(gone.deleted_count)


def forget_video_in_bases(org_id: str, video_id: str) -> None:
    """Drop a deleted video from every knowledge base of the org."""
    with db.unavailable_on_failure():
        db.collection(KB_VIDEOS).delete_many({"orgId": org_id, "videoId": video_id})


def forget_kb(org_id: str, kb_id: str) -> None:
    """Drop a deleted knowledge base's video list."""
    with db.unavailable_on_failure():
        db.collection(KB_VIDEOS).delete_many({"orgId": org_id, "kbId": kb_id})
