"""Transcoding as domain logic: from an S3 upload to a published HLS ladder (or a clear failure).

`process_upload` is what one S3 ObjectCreated record starts: refuse keys we did not issue, claim
the video (idempotency), download, probe, encode in one FFmpeg run while shipping its output (the
lowest rung playable from its first segment), record usage, publish `video.ready` (uploads and
recordings alike) or `video.failed`. Long sources go to the chunked path instead (`transcode.chunked`:
`start_chunked` -> `transcode_chunk` per chunk in a Step Functions Map, the leading finished
chunks published early -> `join_chunks`). Shipping outputs and finishing a video, shared by both
paths, is `transcode.publish`; what the scheduled sweep settles is `transcode.reconcile`.

The charge and the events a finished video implies are recorded in the same update that marks it
`completed` or `failed` (verriflo.outbox) and carried out right after; what an interrupted attempt
left undone is carried out by the retry (the S3 retry of a finished video, the join's retry, the
state machine's Catch) or by the scheduled sweep (`transcode.sweep`), once.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from verriflo import media, objects, orgs, outbox
from verriflo.errors import BadRequest, NotFound
from verriflo.media import Video
from verriflo.observability import logger

from transcode import captioning, chunked, pipeline, publish
from transcode.pipeline import EncodeFailed, InvalidMedia, Probe
from transcode.publish import Result, Superseded


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
        actual = publish.source_size(video) if size is None else size
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
            captioning.start(video, src.has_audio)  # beside the transcode, not after it
            if src.duration_s > settings.chunk_threshold_s and settings.transcode_state_machine_arn:
                chunked.start_chunked(video, src)
                return Result("chunked", video_id)
            _transcode_whole(video, source, src, work / "out")
        publish.record_storage(video)
    except InvalidMedia as exc:
        return publish.failed(video, str(exc))
    except EncodeFailed as exc:
        logger.error("transcode.encode_failed", extra={"detail": str(exc)[:500]})
        return publish.failed(video, "We could not transcode this video; its streams may be damaged.")
    except Superseded:
        logger.info("transcode.superseded")
        if media.find_video(video_id) is None:  # deleted while we worked: drop what we wrote
            objects.delete_prefix(settings.media_bucket, video.media_prefix)
        return Result("duplicate", video_id)
    return Result("completed", video_id)


def _refused_size(video: Video, actual: int) -> str | None:
    if actual == 0:
        return "The uploaded file is empty."
    if video.size_bytes and actual > video.size_bytes:
        return "The uploaded file is larger than the size given when the video was created."
    return None


def _transcode_whole(video: Video, source: Path, src: Probe, out: Path) -> None:
    """One FFmpeg run makes the whole ladder, the poster and the thumbnails; the lowest rung is
    playable as soon as its first segment is stored."""
    rungs = pipeline.plan_ladder(src)
    early = pipeline.ffmpeg_settings().early_rendition
    stills = out / "stills"
    out.mkdir(parents=True, exist_ok=True)
    with publish.Publisher(video, out, rungs, src.has_audio, early) as publisher:
        progress = publish.Progress(video, 5, 98)
        pipeline.encode(source, out, rungs, src, on_progress=progress, stills_dir=stills, event=early)
    poster_key, thumb_keys = publisher.finish(stills)
    publish.finish(video, src.duration_s, rungs, src.has_audio, poster_key, thumb_keys)
