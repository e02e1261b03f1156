"""Publishing what a transcode made, and its end: shipping segments while FFmpeg writes them
(`Publisher`), playlists and the master, progress, and the one update that completes or fails a
video with the charge and events it implies (`finish`, `failed`, through verriflo.outbox).

Shared by the upload path (`transcode.logic`) and the chunked path (`transcode.chunked`).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from verriflo import ledger, media, objects, outbox, pricing
from verriflo.errors import NotFound
from verriflo.media import Rendition, Video
from verriflo.observability import logger

from transcode import pipeline
from transcode.pipeline import InvalidMedia, Rung

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


class Progress:
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


def renditions(rungs: list[Rung], has_audio: bool) -> list[Rendition]:
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


def event_data(video: Video, **extra: Any) -> dict[str, Any]:
    """What `video.ready` and `video.failed` say of a video (verriflo.webhooks.CATALOGUE): a
    recording's also name its room and its recording in the room API."""
    data: dict[str, Any] = {"videoId": video.id, "kind": video.public_kind, "title": video.title}
    if video.kind == "recording":
        data |= {"roomId": video.room_id, "egressId": video.egress_id}
    return data | extra


def source_size(video: Video) -> int:
    """The stored source's real size (what S3 holds, whatever was declared)."""
    try:
        return int(objects.head(video.source_bucket, video.source_key)["ContentLength"])
    except NotFound:
        raise InvalidMedia("The uploaded file is gone; please upload it again.") from None


def record_storage(video: Video) -> None:
    """What the finished video really takes: its source plus every output (recomputed, so a retry
    writes the same figure)."""
    settings = media.media_settings()
    outputs = objects.prefix_bytes(settings.media_bucket, video.media_prefix)
    media.record_stored_bytes(video, source_size(video) + outputs)


def failed(video: Video, message: str) -> Result:
    objects.delete_prefix(media.media_settings().media_bucket, video.media_prefix)
    failed = outbox.event(
        "video.failed",
        video.org_id,
        event_data(video, status="failed", message=message),
        event_id=f"evt_video_failed_{video.id}_{video.attempt}",
    )
    if media.fail(video, message, [failed]):
        outbox.drain(media.VIDEOS, video.id)
    logger.warning("transcode.failed", extra={"reason": message})
    return Result("failed", video.id, message)


class Publisher:
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

    def __enter__(self) -> Publisher:
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
                publish_master(self.video, self.out, self.rungs[:1], self.has_audio)
                if not media.publish_renditions(
                    self.video, renditions(self.rungs[:1], self.has_audio), None, []
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
        publish_playlists(
            self.video, self.out, [r for r in self.rungs if r != self.rungs[0] or not self.published]
        )
        publish_master(self.video, self.out, self.rungs, self.has_audio)
        return poster_key, thumb_keys


def publish_playlists(video: Video, out: Path, rungs: list[Rung]) -> None:
    # Only once their segments are all stored: a playlist never names a missing segment.
    objects.put_files(
        media.media_settings().media_bucket,
        video.media_prefix,
        [out / r.name / "index.m3u8" for r in rungs],
        out,
    )


def publish_master(video: Video, out: Path, rungs: list[Rung], has_audio: bool) -> None:
    master = out / "master.m3u8"
    master.write_text(pipeline.master_playlist(rungs, has_audio))
    objects.put_files(media.media_settings().media_bucket, video.media_prefix, [master], out)


def finish(
    video: Video,
    duration_s: float,
    rungs: list[Rung],
    has_audio: bool,
    poster_key: str | None,
    thumb_keys: list[str],
) -> None:
    minutes = Decimal(str(round(duration_s / 60, 4)))
    data = event_data(
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
        # One event for one fact: a recording's HLS is a video like any other (`kind`, `roomId`);
        # `recording.ready` (its MP4 is stored) is the rooms function's, once per recording.
        outbox.event("video.ready", video.org_id, data, event_id=f"evt_video_ready_{video.id}"),
    ]
    if not media.complete(video, renditions(rungs, has_audio), poster_key, thumb_keys, effects):
        raise Superseded()
    outbox.drain(media.VIDEOS, video.id)
    logger.info("transcode.completed", extra={"duration_s": duration_s, "renditions": len(rungs)})
