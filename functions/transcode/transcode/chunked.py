"""The chunked path for long sources (a Step Functions Map): the job, one chunk of every rung per
task, the leading finished chunks published early, then the join into one ladder (or the Catch)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from verriflo import media, objects, outbox
from verriflo.media import Video
from verriflo.observability import logger

from transcode import pipeline, publish
from transcode.models import ChunkJob
from transcode.pipeline import Probe, Rung
from transcode.publish import Superseded


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
    from transcode import executions

    job = chunk_job(video, src)
    media.set_chunks(video, len(job.chunks))
    executions.start(job, name=f"{video.id}-{video.attempt}")
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
                publish.publish_master(video, Path(tmp), [lowest], job.has_audio)
            if not media.publish_renditions(video, publish.renditions([lowest], job.has_audio), None, []):
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
        publish.publish_playlists(video, out, rungs)
        publish.publish_master(video, out, rungs, job.has_audio)
    thumbs = [
        f"{video.media_prefix}thumbs/thumb_{i + 1:02d}.jpg"
        for i in range(pipeline.ffmpeg_settings().thumbnails)
    ]
    publish.finish(video, job.duration_s, rungs, job.has_audio, f"{video.media_prefix}poster.jpg", thumbs)
    publish.record_storage(video)
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
    return {"videoId": job.video_id, "status": publish.failed(video, message).outcome}
