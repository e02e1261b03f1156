"""Automatic captions for one video: claim its pending captions, check length and credits, hear
it (faster-whisper offline, Amazon Transcribe in AWS: `verriflo_ai.speech`), then publish the HLS
subtitles, the `.vtt` and the transcript, and end with the one update that makes the captions
ready and records their charge and `video.captions_ready` (verriflo.outbox).

Retry-safe at every step: the claim admits the same request again (Lambda's retries) or anyone
after the lease; files and the transcript are rewritten in place; the final update is fenced by
the claim, so the charge and the event are recorded once, and a retry that finds them recorded
but not carried out carries them out (`outbox.drain`). An owner's upload replaces the claim: a
run it overtook changes nothing.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Literal

from verriflo import captions, ledger, media, objects, outbox, pricing, transcripts, webvtt
from verriflo.errors import InsufficientCredits, NotFound, ValidationFailed
from verriflo.media import Video
from verriflo.observability import logger
from verriflo_ai import speech
from verriflo_ai.settings import ai_settings

Outcome = Literal["ready", "none", "failed", "duplicate"]
AUTO = "auto"
CLOCK_WAIT_S = 60.0


@dataclass
class Result:
    """What happened to one video's captions."""

    outcome: Outcome
    video_id: str
    message: str = ""


def captioning() -> speech.Captioning:
    """Whisper's settings for captions, bounded by CAPTIONS_MAX_DURATION_S."""
    return speech.Captioning(
        max_seconds=transcripts.captions_settings().max_duration_s, threads=ai_settings().whisper_threads
    )


def caption_video(org_id: str, video_id: str, claimant: str) -> Result:
    """Make a video's automatic captions once (safe to call again with the same request)."""
    video = transcripts.claim(org_id, video_id, claimant)
    if video is None:
        # Done, someone else's, or never ours: a retry after our own finish completes its effects.
        if media.find_video(video_id) is not None:
            outbox.drain(media.VIDEOS, video_id)
        return Result("duplicate", video_id)
    logger.append_keys(org_id=org_id, video_id=video_id)
    settings = transcripts.captions_settings()
    duration = float(video.duration_s or 0)
    if duration > settings.max_duration_s:
        return _failed(
            video,
            claimant,
            f"Videos longer than {_length(settings.max_duration_s)} get no automatic captions.",
        )
    minutes = Decimal(str(round(max(duration, 1) / 60, 4)))
    try:
        ledger.require_credits(
            org_id,
            pricing.caption_minutes(minutes),
            "Insufficient credits for automatic captions; add credits, or upload a .vtt.",
        )
    except InsufficientCredits as exc:
        return _failed(video, claimant, exc.message)
    try:
        said = _hear(video)
    except (ValidationFailed, NotFound, speech.SpeechError) as exc:  # bad audio, source gone, refused
        return _failed(video, claimant, getattr(exc, "message", None) or str(exc))
    if not said:
        value = {"status": "none", "reason": "No speech was heard in the video.", "revision": 0}
        transcripts.settle(org_id, video_id, claimant, value)
        logger.info("captions.none")
        return Result("none", video_id)
    duration = max(duration, said[-1].end_s)
    segments = [transcripts.TranscriptSegment(start_s=s.start_s, end_s=s.end_s, text=s.text) for s in said]
    mpegts = video_clock(video)
    cues = webvtt.from_transcript([(s.start_s, s.end_s, s.text) for s in said])
    prefix = captions.publish_files(video, AUTO, cues, duration, mpegts)
    if transcripts.save(video, segments, source="auto", duration_s=duration) is None:
        return Result("duplicate", video_id, "The owner's captions are in.")
    value = captions.ready_state(prefix, "auto", 0, mpegts)
    effects = [
        outbox.charge(
            ledger.UsageEvent(
                entry_id=f"captions:{video.id}",
                org_id=org_id,
                service="captions",
                credits=pricing.caption_minutes(minutes),
                quantity=float(minutes),
                unit="minute",
                room_id=video.room_id,
                meta={"videoId": video.id},
            )
        ),
        captions.ready_event(video, "auto", duration, event_id=f"evt_captions_ready_{video.id}_auto"),
    ]
    if not transcripts.settle(org_id, video_id, claimant, value, effects):
        if media.find_video(video_id) is None:  # deleted while we listened: leave nothing behind
            objects.delete_prefix(
                media.media_settings().media_bucket, transcripts.all_files_prefix(org_id, video_id)
            )
            transcripts.delete(org_id, video_id)
            return Result("duplicate", video_id, "The video was deleted meanwhile.")
        return Result("duplicate", video_id, "The captions were replaced meanwhile.")
    outbox.drain(media.VIDEOS, video_id)
    logger.info("captions.ready", extra={"sentences": len(said), "duration_s": duration})
    return Result("ready", video_id)


def video_clock(video: Video, wait_s: float | None = None) -> int:
    """The MPEG-TS time (90 kHz) at which the video's first frame is shown in its HLS segments,
    read from the lowest rung's first segment (waiting, bounded, for the transcode to store it);
    FFmpeg's usual start (webvtt.MPEGTS_ZERO) when it cannot be read (no PyAV in this layer, no
    segment in time)."""
    bucket = media.media_settings().media_bucket
    deadline = time.monotonic() + (CLOCK_WAIT_S if wait_s is None else wait_s)
    while True:
        current = media.find_video(video.id)
        first = _first_segment(bucket, current) if current and current.renditions else None
        if first or time.monotonic() >= deadline:
            break
        time.sleep(1)  # bounded by the deadline
    if not first:
        return webvtt.MPEGTS_ZERO
    try:
        import av
    except ImportError:
        return webvtt.MPEGTS_ZERO
    with tempfile.TemporaryDirectory(prefix="captions-clock-") as tmp:
        path = Path(tmp) / "first.ts"
        objects.download(bucket, first, path)
        try:
            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                for packet in container.demux(stream):
                    if packet.pts is not None:
                        return int(packet.pts * stream.time_base * 90_000)
        except (av.FFmpegError, IndexError):
            pass
    return webvtt.MPEGTS_ZERO


def _first_segment(bucket: str, video: Video) -> str | None:
    prefix = f"{video.media_prefix}{video.renditions[0].name}/"
    try:
        playlist = objects.read_text(bucket, f"{prefix}index.m3u8")
    except NotFound:
        return None
    names = [line for line in playlist.splitlines() if line and not line.startswith("#")]
    return prefix + names[0] if names else None


def _length(seconds: float) -> str:
    return f"{seconds / 60:.0f} minutes" if seconds >= 120 else f"{seconds:.0f} seconds"


def _failed(video: Video, claimant: str, reason: str) -> Result:
    transcripts.settle(
        video.org_id, video.id, claimant, {"status": "failed", "reason": reason, "revision": 0}
    )
    logger.warning("captions.failed", extra={"reason": reason})
    return Result("failed", video.id, reason)


_FORMATS = {
    "video/webm": "webm",
    "audio/webm": "webm",
    "audio/ogg": "ogg",
    "audio/mpeg": "mp3",
    "audio/wav": "wav",
}


def _hear(video: Video) -> list[speech.Segment]:
    """The video's sentences with their times (the provider the AI settings name)."""
    conf = captioning()
    provider = ai_settings().speech_provider
    if provider == "aws":
        media_format = _FORMATS.get(video.content_type, "mp4")
        return speech.transcribe_segments_aws(video.source_bucket, video.source_key, media_format, conf)
    if provider != "local":
        raise speech.SpeechError("Captions need AI_SPEECH_PROVIDER=local (this function's layer) or aws.")
    with tempfile.TemporaryDirectory(prefix="captions-") as tmp:
        source = Path(tmp) / "source"
        objects.download(video.source_bucket, video.source_key, source)
        return speech.transcribe_segments(str(source), conf)
