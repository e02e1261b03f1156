"""Captions logic both media functions share: publishing a revision's files (the whole `.vtt` and
the HLS subtitles) and the state and event of ready captions. The captions worker
(`functions/captions`) publishes the automatic ones, the cdn's upload route an owner's."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from verriflo import media, objects, outbox, transcripts, webvtt
from verriflo.media import Video


def publish_files(
    video: Video, revision: str, cues: list[webvtt.Cue], duration_s: float, mpegts: int = webvtt.MPEGTS_ZERO
) -> str:
    """The captions' files under their revision's prefix: `captions.vtt` (the whole file) and the
    HLS subtitles (`subs/index.m3u8` and its WebVTT segments); returns the prefix."""
    bucket = media.media_settings().media_bucket
    prefix = transcripts.files_prefix(video.org_id, video.id, revision)
    playlist, segments = webvtt.segments(cues, duration_s, transcripts.captions_settings().segment_s, mpegts)
    with tempfile.TemporaryDirectory(prefix="captions-out-") as tmp:
        root = Path(tmp)
        (root / "subs").mkdir()
        files = [root / "captions.vtt"]
        files[0].write_text(webvtt.render(cues))
        for name, text in segments:
            path = root / "subs" / name
            path.write_text(text)
            files.append(path)
        objects.put_files(bucket, prefix, files, root)
    # The playlist last: it never names a segment that is not stored.
    objects.put_text(bucket, f"{prefix}subs/index.m3u8", playlist)
    return prefix


def ready_state(prefix: str, source: str, revision: int, mpegts: int) -> dict[str, Any]:
    """The captions state of published captions (`mpegts`: the video's clock their segments use)."""
    return {
        "status": "ready",
        "source": source,
        "language": "en",
        "prefix": prefix,
        "revision": revision,
        "mpegts": mpegts,
    }


def ready_event(
    video: Video, source: str, duration_s: float, *, event_id: str, language: str = "en"
) -> dict[str, Any]:
    """`video.captions_ready` as the transcript contract names it."""
    data = {
        "videoId": video.id,
        "kind": "recording" if video.kind == "recording" else "upload",
        "roomId": video.room_id,
        "title": video.title,
        "captions": "ready",
        "language": language,
        "source": source,
        "durationS": round(duration_s, 3),
    }
    return outbox.event("video.captions_ready", video.org_id, data, event_id=event_id)
