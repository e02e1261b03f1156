"""Transcoding as domain logic: from an S3 upload to a published HLS ladder (or a clear failure).

`process_upload` is what one S3 ObjectCreated record starts: refuse keys we did not issue, claim
the video (idempotency), download, probe, encode in one FFmpeg run while shipping its output (the
lowest rung playable from its first segment), record usage, publish `video.ready`/`recording.ready`
or `video.failed`. Long sources go to the chunked path instead (`start_chunked` -> `transcode_chunk`
per chunk in a Step Functions Map, the leading finished chunks published early -> `join_chunks`).

The charge and the events a finished video implies are recorded in the same update that marks it
`completed` or `failed` (verriflo.outbox) and carried out right after; what an interrupted attempt
left undone is carried out by the retry (the S3 retry of a finished video, the join's retry, the
state machine's Catch) or by the scheduled sweep (`retention`), once.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote_plus

from pydantic import BaseModel, ConfigDict
from verriflo import ledger, media, objects, orgs, outbox, pricing
from verriflo.errors import BadRequest, NotFound, ServiceUnavailable
from verriflo.media import Rendition, Video
from verriflo.observability import logger

from transcode import pipeline
from transcode.pipeline import EncodeFailed, InvalidMedia, Probe, Rung

Outcome = Literal["completed", "failed", "refused", "duplicate", "chunked"]
PROGRESS_EVERY_S = 2.0


class Superseded(Exception):
    """Our claim on the video is gone (deleted, or taken over after our lease ran out): stop quietly."""


@dataclass
class Result:
    """What happened to one upload."""

    outcome: Outcome
    video_id: str | None = None
    message: str = ""


class ChunkJob(BaseModel):
    """The chunked path's input, passed through the state machine."""

    model_config = ConfigDict(defer_build=True)

    org_id: str
    video_id: str
    claimant: str
    bucket: str
    key: str
    duration_s: float
    has_audio: bool
    width: int
    height: int
    fps: float
    rungs: list[dict[str, Any]]
    chunks: list[dict[str, float]]

    def probe(self) -> Probe:
        """The source as the first probe saw it."""
        return Probe(
            duration_s=self.duration_s,
            width=self.width,
            height=self.height,
            fps=self.fps,
            has_audio=self.has_audio,
            format_name="",
            video_codec="",
        )

    def ladder(self) -> list[Rung]:
        """The planned rungs."""
        return [Rung(**r) for r in self.rungs]


class _Progress:
    """Writes progress to MongoDB at most every PROGRESS_EVERY_S, and notices a lost claim."""

    def __init__(self, video: Video, start: int, end: int) -> None:
        self.video, self.start, self.end = video, start, end
        self.last_at, self.last = 0.0, -1

    def __call__(self, fraction: float) -> None:
        value = int(self.start + (self.end - self.start) * fraction)
        moment = time.monotonic()
        if value > self.last and moment - self.last_at >= PROGRESS_EVERY_S:
            self.last_at, self.last = moment, value
            if not media.set_progress(self.video, value):
                raise Superseded()


def _renditions(rungs: list[Rung], has_audio: bool) -> list[Rendition]:
    return [
        Rendition(
            name=r.name,
            width=r.width,
            height=r.height,
            bandwidth=r.bandwidth if has_audio else r.video_bps,
            codecs=pipeline.codecs(has_audio),
        )
        for r in rungs
    ]


def _event_data(video: Video, **extra: Any) -> dict[str, Any]:
    data = {"videoId": video.id, "kind": video.kind, "title": video.title}
    if video.room_id:
        data["roomId"] = video.room_id
    return data | extra


def refuse_reason(bucket: str, key: str) -> tuple[str, str] | str:
    """(org id, video id) for a key we issued in the right bucket, else why it is refused."""
    settings = media.media_settings()
    recording = media.RECORDING_KEY.fullmatch(key) if bucket == settings.recordings_bucket else None
    if recording:
        # An Egress file; its record is made on arrival, only for a recording functions/rooms started
        # to write exactly here (anyone holding LiveKit's project-wide roomRecord could have an egress
        # write under any org's prefix).
        org_id, room_id = recording["org"], recording["room"]
        try:
            orgs.get_org(org_id)
        except NotFound:
            return "No organisation has this key."
        egress_id = media.started_recording(org_id, room_id, bucket, key)
        if egress_id is None:
            return "No recording of ours was started to write this key."
        video = media.ensure_recording(org_id, room_id, recording["file"], bucket, key, egress_id)
        return video.org_id, video.id
    try:
        org_id, video_id = media.parse_source_key(key)
    except BadRequest as exc:
        return exc.message
    video = media.find_video(video_id)
    if video is None:
        return "No video has this key (deleted, or never created)."
    if video.org_id != org_id or video.source_bucket != bucket:
        # Someone wrote under another org's prefix (or into the other bucket): never theirs to start.
        return "The key's organisation does not own this video."
    return org_id, video_id


def process_upload(bucket: str, key: str, claimant: str, size: int | None = None) -> Result:
    """Handle one uploaded object end to end (safe to call again with the same event)."""
    found = refuse_reason(bucket, key)
    if isinstance(found, str):
        logger.warning("transcode.refused", extra={"bucket": bucket, "reason": found})
        if bucket == media.media_settings().uploads_bucket:
            # No video of ours has this upload key (deleted, or written under a prefix that is not
            # its own): nobody will ever transcode or count it, so it is not kept.
            objects.delete(bucket, key)
        return Result("refused", message=found)
    org_id, video_id = found
    video = media.claim(org_id, video_id, claimant)
    if video is None:
        # Done or being done: a retry after our own finish failed part-way completes its effects.
        done = outbox.drain(media.VIDEOS, video_id)
        logger.info("transcode.duplicate", extra={"video_id": video_id, "effects_completed": done})
        return Result("duplicate", video_id)
    logger.append_keys(org_id=org_id, video_id=video_id)
    settings = media.media_settings()
    try:
        # Start clean: a retry after a crash must not mix its files with the dead attempt's (the
        # first attempt has nothing before it: ids are never reused).
        if video.attempt > 1:
            objects.delete_prefix(settings.media_bucket, video.media_prefix)
        actual = _source_size(video) if size is None else size
        refused = _refused_size(video, actual)
        if refused:
            # Never kept: an oversized source would count against no limit, an empty one is junk.
            # Deleted before the video is failed, so a retry finds it gone and fails it the same way.
            objects.delete(bucket, key)
            media.record_stored_bytes(video, 0)
            raise InvalidMedia(refused)
        media.record_stored_bytes(video, actual)
        with tempfile.TemporaryDirectory(prefix="transcode-") as tmp:
            work = Path(tmp)
            source = work / "source"
            objects.download(bucket, key, source)
            media.set_progress(video, 2)
            src = pipeline.probe(source)
            media.record_probe(video, src.duration_s, src.width, src.height)
            if src.duration_s > settings.chunk_threshold_s and settings.transcode_state_machine_arn:
                start_chunked(video, src)
                return Result("chunked", video_id)
            _transcode_whole(video, source, src, work / "out")
        _record_storage(video)
    except InvalidMedia as exc:
        return _failed(video, str(exc))
    except EncodeFailed as exc:
        logger.error("transcode.encode_failed", extra={"detail": str(exc)[:500]})
        return _failed(video, "We could not transcode this video; its streams may be damaged.")
    except Superseded:
        logger.info("transcode.superseded")
        if media.find_video(video_id) is None:  # deleted while we worked: drop what we wrote
            objects.delete_prefix(settings.media_bucket, video.media_prefix)
        return Result("duplicate", video_id)
    return Result("completed", video_id)


def _source_size(video: Video) -> int:
    """The stored source's real size (what S3 holds, whatever was declared)."""
    try:
        return int(objects.head(video.source_bucket, video.source_key)["ContentLength"])
    except NotFound:
        raise InvalidMedia("The uploaded file is gone; please upload it again.") from None


def _refused_size(video: Video, actual: int) -> str | None:
    if actual == 0:
        return "The uploaded file is empty."
    if video.size_bytes and actual > video.size_bytes:
        return "The uploaded file is larger than the size given when the video was created."
    return None


def _record_storage(video: Video) -> None:
    """What the finished video really takes: its source plus every output (recomputed, so a retry
    writes the same figure)."""
    settings = media.media_settings()
    outputs = objects.prefix_bytes(settings.media_bucket, video.media_prefix)
    media.record_stored_bytes(video, _source_size(video) + outputs)


def _failed(video: Video, message: str) -> Result:
    objects.delete_prefix(media.media_settings().media_bucket, video.media_prefix)
    failed = outbox.event(
        "video.failed",
        video.org_id,
        _event_data(video, status="failed", message=message),
        event_id=f"evt_video_failed_{video.id}_{video.attempt}",
    )
    if media.fail(video, message, [failed]):
        outbox.drain(media.VIDEOS, video.id)
    logger.warning("transcode.failed", extra={"reason": message})
    return Result("failed", video.id, message)


class _Publisher:
    """Ships the encode's output to storage while FFmpeg is still writing it.

    Four times a second: finished segments of every rung go up; with early publication, the lowest
    rung's EVENT playlist follows (read before its segments are shipped, so it only names stored
    segments), and the first time it names a segment, a master naming that rung alone goes up and
    the video becomes playable: a player can start while the rest is encoded, and the playlist
    grows as it plays. At the end the whole ladder replaces that master.
    """

    every_s = 0.25

    def __init__(self, video: Video, out: Path, rungs: list[Rung], has_audio: bool, early: bool) -> None:
        self.video, self.out, self.rungs, self.has_audio, self.early = video, out, rungs, has_audio, early
        self.bucket = media.media_settings().media_bucket
        self.sent: set[Path] = set()
        self.published = ""  # the lowest rung's playlist as last uploaded
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._loop, name="publisher", daemon=True)
        self.error: BaseException | None = None

    def __enter__(self) -> _Publisher:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopped.set()
        self.thread.join()

    def _loop(self) -> None:
        while not self.stopped.wait(self.every_s):
            try:
                self.tick()
            except BaseException as exc:  # noqa: BLE001 - kept and re-raised on the caller's thread
                self.error = exc
                return

    def tick(self) -> None:
        """Ship what is finished; publish the lowest rung early."""
        if self.error:
            raise self.error
        lowest = self.out / self.rungs[0].name / "index.m3u8"
        # FFmpeg renames a playlist into place after the segment it adds: read it first, and every
        # segment it names is on disk by the time the segments are shipped below.
        text = lowest.read_text() if self.early and lowest.exists() else ""
        self.ship()
        if text and text != self.published and pipeline.playlist_segments(text):
            objects.put_text(self.bucket, f"{self.video.media_prefix}{self.rungs[0].name}/index.m3u8", text)
            first, self.published = not self.published, text
            if first:
                _publish_master(self.video, self.out, self.rungs[:1], self.has_audio)
                if not media.publish_renditions(
                    self.video, _renditions(self.rungs[:1], self.has_audio), None, []
                ):
                    raise Superseded()
                logger.info("transcode.first_rendition", extra={"rendition": self.rungs[0].name})

    def ship(self) -> None:
        """Upload every finished segment not uploaded yet."""
        with self.lock:
            ready = sorted(
                f for r in self.rungs for f in (self.out / r.name).glob("*.ts") if f not in self.sent
            )
            if ready:
                objects.put_files(self.bucket, self.video.media_prefix, ready, self.out)
                self.sent.update(ready)

    def finish(self, stills: Path) -> tuple[str, list[str]]:
        """After FFmpeg: the last segments, the stills, every playlist, then the whole ladder's
        master; returns the poster's and thumbnails' keys."""
        self.tick()
        poster, thumbs = pipeline.stills(stills)
        poster_key, *thumb_keys = objects.put_files(
            self.bucket, self.video.media_prefix, [poster, *thumbs], stills
        )
        for rung in self.rungs:
            playlist = self.out / rung.name / "index.m3u8"
            text = playlist.read_text()
            # The early rung's playlist is already out as EVENT: it may only grow and end.
            playlist.write_text(text if rung == self.rungs[0] and self.published else pipeline.as_vod(text))
        _publish_playlists(
            self.video, self.out, [r for r in self.rungs if r != self.rungs[0] or not self.published]
        )
        _publish_master(self.video, self.out, self.rungs, self.has_audio)
        return poster_key, thumb_keys


def _publish_playlists(video: Video, out: Path, rungs: list[Rung]) -> None:
    # Only once their segments are all stored: a playlist never names a missing segment.
    objects.put_files(
        media.media_settings().media_bucket,
        video.media_prefix,
        [out / r.name / "index.m3u8" for r in rungs],
        out,
    )


def _publish_master(video: Video, out: Path, rungs: list[Rung], has_audio: bool) -> None:
    master = out / "master.m3u8"
    master.write_text(pipeline.master_playlist(rungs, has_audio))
    objects.put_files(media.media_settings().media_bucket, video.media_prefix, [master], out)


def _transcode_whole(video: Video, source: Path, src: Probe, out: Path) -> None:
    """One FFmpeg run makes the whole ladder, the poster and the thumbnails; the lowest rung is
    playable as soon as its first segment is stored."""
    rungs = pipeline.plan_ladder(src)
    early = pipeline.ffmpeg_settings().early_rendition
    stills = out / "stills"
    out.mkdir(parents=True, exist_ok=True)
    with _Publisher(video, out, rungs, src.has_audio, early) as publisher:
        pipeline.encode(
            source, out, rungs, src, on_progress=_Progress(video, 5, 98), stills_dir=stills, event=early
        )
    poster_key, thumb_keys = publisher.finish(stills)
    _finish(video, src.duration_s, rungs, src.has_audio, poster_key, thumb_keys)


def _finish(
    video: Video,
    duration_s: float,
    rungs: list[Rung],
    has_audio: bool,
    poster_key: str | None,
    thumb_keys: list[str],
) -> None:
    minutes = Decimal(str(round(duration_s / 60, 4)))
    data = _event_data(
        video, status="completed", durationS=round(duration_s, 3), renditions=[r.name for r in rungs]
    )
    effects = [
        outbox.charge(
            ledger.UsageEvent(
                entry_id=f"transcode:{video.id}",
                org_id=video.org_id,
                service="transcode",
                credits=pricing.transcode_minutes(minutes),
                quantity=float(minutes),
                unit="minute",
                room_id=video.room_id,
                meta={"videoId": video.id, "renditions": [r.name for r in rungs]},
            )
        ),
        outbox.event("video.ready", video.org_id, data, event_id=f"evt_video_ready_{video.id}"),
    ]
    if video.kind == "recording":
        effects.append(
            outbox.event("recording.ready", video.org_id, data, event_id=f"evt_recording_ready_{video.id}")
        )
    if not media.complete(video, _renditions(rungs, has_audio), poster_key, thumb_keys, effects):
        raise Superseded()
    outbox.drain(media.VIDEOS, video.id)
    logger.info("transcode.completed", extra={"duration_s": duration_s, "renditions": len(rungs)})


# --- the chunked path (Step Functions Map) ----------------------------------------------------------


def chunk_job(video: Video, src: Probe) -> ChunkJob:
    """The state machine input for a long source."""
    settings = media.media_settings()
    rungs = pipeline.plan_ladder(src)
    chunks = [
        {"index": i, "start": s, "length": n}
        for i, s, n in pipeline.plan_chunks(src.duration_s, settings.chunk_length_s)
    ]
    return ChunkJob(
        org_id=video.org_id,
        video_id=video.id,
        claimant=video.claimed_by or "",
        bucket=video.source_bucket,
        key=video.source_key,
        duration_s=src.duration_s,
        has_audio=src.has_audio,
        width=src.width,
        height=src.height,
        fps=src.fps,
        rungs=[r.__dict__ for r in rungs],
        chunks=chunks,
    )


def start_chunked(video: Video, src: Probe) -> ChunkJob:
    """Hand a long source to the chunked-transcode state machine."""
    from transcode import workflow

    job = chunk_job(video, src)
    media.set_chunks(video, len(job.chunks))
    workflow.start(job, name=f"{video.id}-{video.attempt}")
    logger.info("transcode.chunked", extra={"chunks": len(job.chunks)})
    return job


def _claimed(job: ChunkJob) -> Video:
    video = media.find_video(job.video_id)
    if (
        video is None
        or video.org_id != job.org_id
        or video.claimed_by != job.claimant
        or video.status != "processing"
    ):
        raise Superseded()
    return video


def transcode_chunk(job: ChunkJob, index: int, source: str | Path) -> dict[str, Any]:
    """Encode one chunk of every rung; its segments land beside the final playlists."""
    video = _claimed(job)
    chunk = next(c for c in job.chunks if int(c["index"]) == index)
    src = job.probe()
    rungs = job.ladder()
    bucket = media.media_settings().media_bucket
    with tempfile.TemporaryDirectory(prefix=f"chunk{index}-") as tmp:
        out = Path(tmp)
        pipeline.encode(
            source,
            out,
            rungs,
            src,
            start_s=chunk["start"] or None,
            length_s=chunk["length"],
            segment_prefix=f"c{index:04d}_",
        )
        for rung in rungs:
            playlist = out / rung.name / "index.m3u8"
            playlist.rename(out / rung.name / f"c{index:04d}.m3u8")
        if index == 0:
            pipeline.snapshots(source, out / "snap", src)
        objects.put_files(
            bucket, video.media_prefix, pipeline.files_under(out / "snap") if index == 0 else [], out / "snap"
        )
        objects.put_files(
            bucket, video.media_prefix, [f for r in rungs for f in pipeline.files_under(out / r.name)], out
        )
    progress = media.chunk_done(video, index)
    if pipeline.ffmpeg_settings().early_rendition:
        _publish_leading_chunks(job, video)
    return {"index": index, "progress": progress}


def _chunk_playlists(job: ChunkJob, video: Video, rung: Rung, count: int) -> list[str]:
    bucket = media.media_settings().media_bucket
    indexes = sorted(int(c["index"]) for c in job.chunks)[:count]
    return [objects.read_text(bucket, f"{video.media_prefix}{rung.name}/c{i:04d}.m3u8") for i in indexes]


def _publish_leading_chunks(job: ChunkJob, video: Video) -> None:
    """Make the video playable from the chunks finished so far: the lowest rung's EVENT playlist of
    the leading run of finished chunks (0, 1, ... with no gap), growing as more finish.

    Chunks finish in any order and in parallel Lambdas: MongoDB decides who publishes how many
    (`raise_early_chunks` only ever raises the count), and whoever uploaded a shorter playlist than
    the count now recorded uploads again, so the last upload is always the longest.
    """
    done, count = set(media.chunks_done(video)), 0
    while count in done:
        count += 1
    if count == 0 or count == len(job.chunks):
        return  # nothing playable from the start yet, or the join is next anyway
    before = media.raise_early_chunks(video, count)
    if before is None:
        return
    lowest = job.ladder()[0]
    bucket = media.media_settings().media_bucket
    while True:
        text = pipeline.join_playlists(_chunk_playlists(job, video, lowest, count), event=True, ended=False)
        objects.put_text(bucket, f"{video.media_prefix}{lowest.name}/index.m3u8", text)
        if before == 0:
            with tempfile.TemporaryDirectory(prefix="early-") as tmp:
                _publish_master(video, Path(tmp), [lowest], job.has_audio)
            if not media.publish_renditions(video, _renditions([lowest], job.has_audio), None, []):
                raise Superseded()
            before = count
            logger.info("transcode.first_rendition", extra={"rendition": lowest.name, "chunks": count})
        latest = media.early_chunks(video)
        if latest <= count:
            return
        count = latest


def join_chunks(job: ChunkJob) -> dict[str, Any]:
    """Join the chunk playlists of every rung into one ladder and publish it."""
    finished = media.find_video(job.video_id)
    if (
        finished is not None
        and finished.org_id == job.org_id
        and finished.claimed_by == job.claimant
        and finished.status == "completed"
    ):
        # The retry of a join that completed the video but failed part-way through its effects.
        outbox.drain(media.VIDEOS, finished.id)
        return {"videoId": finished.id, "status": "completed"}
    video = _claimed(job)
    rungs = job.ladder()
    # A playlist already out as EVENT (published early) may only grow and end (RFC 8216 6.2.1).
    early = media.early_chunks(video) > 0
    with tempfile.TemporaryDirectory(prefix="join-") as tmp:
        out = Path(tmp)
        for rung in rungs:
            texts = _chunk_playlists(job, video, rung, len(job.chunks))
            (out / rung.name).mkdir()
            joined = pipeline.join_playlists(texts, event=early and rung == rungs[0])
            (out / rung.name / "index.m3u8").write_text(joined)
        _publish_playlists(video, out, rungs)
        _publish_master(video, out, rungs, job.has_audio)
    thumbs = [
        f"{video.media_prefix}thumbs/thumb_{i + 1:02d}.jpg"
        for i in range(pipeline.ffmpeg_settings().thumbnails)
    ]
    _finish(video, job.duration_s, rungs, job.has_audio, f"{video.media_prefix}poster.jpg", thumbs)
    _record_storage(video)
    return {"videoId": video.id, "status": "completed"}


def fail_chunked(job: ChunkJob, error: dict[str, Any] | None) -> dict[str, Any]:
    """The state machine's Catch: clean up and fail the video."""
    try:
        video = _claimed(job)
    except Superseded:
        # Finished by an attempt that failed after: what it left undone is done here.
        outbox.drain(media.VIDEOS, job.video_id)
        return {"videoId": job.video_id, "status": "superseded"}
    cause = str((error or {}).get("Error", "error"))
    logger.error("transcode.chunked_failed", extra={"error": cause})
    message = (
        "The video ends early: the file looks truncated."
        if "InvalidMedia" in cause
        else "We could not transcode this video; its streams may be damaged."
    )
    return {"videoId": job.video_id, "status": _failed(video, message).outcome}


# --- retention --------------------------------------------------------------------------------------


def expire_recordings() -> int:
    """Delete recordings whose retention ran out (scheduled); returns how many."""
    deleted = 0
    for video in media.expired_recordings():
        try:
            media.purge(video)
        except ServiceUnavailable as exc:
            # This one waits for the next sweep; the others, and the sweep's other work, go on.
            logger.warning(
                "recording.expire_failed", extra={"video_id": video.id, "error": exc.message[:300]}
            )
            continue
        logger.info("recording.expired", extra={"video_id": video.id, "org_id": video.org_id})
        deleted += 1
    return deleted


def complete_effects() -> int:
    """Carry out what finished videos imply and their own attempt left undone; returns how many."""
    return outbox.sweep(media.VIDEOS)


def fail_stalled() -> int:
    """Fail videos whose transcode died for good (retries spent, lease long gone); returns how many."""
    stalled = media.stalled()
    for video in stalled:
        _failed(video, "Transcoding stopped before it finished; please upload the file again.")
    return len(stalled)


# --- reconciliation: S3 triggers that were lost or spent every retry ------------------------------

Dispatch = Callable[[str, str], None]  # (bucket, key): start the transcoder for a stored object
GAVE_UP = "We could not start transcoding this video; please upload it again."
NEVER_ARRIVED = "The upload never arrived before its upload URL expired; create the video again to upload it."


def _fail_unclaimed(video: Video, message: str) -> str:
    failed = outbox.event(
        "video.failed",
        video.org_id,
        _event_data(video, status="failed", message=message),
        event_id=f"evt_video_failed_{video.id}_{video.attempt}",
    )
    if media.fail_unclaimed(video.org_id, video.id, message, [failed]):
        outbox.drain(media.VIDEOS, video.id)
        logger.warning("transcode.reconcile_failed", extra={"video_id": video.id, "reason": message})
    return "failed"


def reconcile(video: Video, dispatch: Dispatch, *, at: datetime, immediate: bool = False) -> str:
    """Settle one pending video against its bucket: a stored source is transcoded (started again,
    at most `max_redispatches` times, then failed); an upload that never came is failed once its
    URL has expired. Returns `dispatched`, `failed` or `waiting`; safe to run again at any time (the
    transcoder's claim makes a second start of the same object a no-op)."""
    settings = media.media_settings()
    quiet = at - timedelta(seconds=settings.reconcile_after_s)
    try:
        objects.head(video.source_bucket, video.source_key)
    except NotFound:
        expired = at - timedelta(seconds=settings.upload_url_ttl_s + settings.reconcile_after_s)
        if video.kind == "video" and video.created_at < expired:
            if video.upload_id:
                objects.abort_multipart(video.source_bucket, video.source_key, video.upload_id)
            return _fail_unclaimed(video, NEVER_ARRIVED)
        return "waiting"
    # A failed invocation is known dead: start again now. Otherwise give the last start its time.
    if media.take_redispatch(
        video, most=settings.max_redispatches, quiet_since=at if immediate else quiet, at=at
    ):
        dispatch(video.source_bucket, video.source_key)
        logger.info("transcode.redispatched", extra={"video_id": video.id, "org_id": video.org_id})
        return "dispatched"
    if media.redispatches_spent(video, settings.max_redispatches, quiet_since=quiet):
        return _fail_unclaimed(video, GAVE_UP)
    return "waiting"


def reconcile_pending(dispatch: Dispatch, at: datetime | None = None) -> dict[str, int]:
    """Scheduled: every video pending for longer than `reconcile_after_s`, settled (`reconcile`)."""
    at = at or orgs.now()
    before = at - timedelta(seconds=media.media_settings().reconcile_after_s)
    outcomes = Counter(reconcile(video, dispatch, at=at) for video in media.pending_since(before))
    return {name: outcomes.get(name, 0) for name in ("dispatched", "failed", "waiting")}


def failed_invocations(
    messages: Iterable[tuple[dict[str, Any], str]],
    done: Callable[[str], None],
    dispatch: Dispatch,
    at: datetime | None = None,
) -> int:
    """Consume the transcoder's on-failure destination: each invocation that spent every retry
    names objects whose videos are settled at once; a message is deleted only once handled (a
    crash leaves it to come back). Returns how many messages were handled."""
    at = at or orgs.now()
    handled = 0
    for payload, receipt in messages:
        for record in payload.get("Records") or []:
            s3 = record.get("s3") or {} if isinstance(record, dict) else {}
            bucket = str((s3.get("bucket") or {}).get("name") or "")
            key = unquote_plus(str((s3.get("object") or {}).get("key") or ""))
            found = refuse_reason(bucket, key)
            video = media.find_video(found[1]) if isinstance(found, tuple) else None
            if video is not None and video.status == "pending":
                reconcile(video, dispatch, at=at, immediate=True)
        done(receipt)
        handled += 1
    return handled
