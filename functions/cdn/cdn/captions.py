"""Captions on the cdn: a video's captions as one `.vtt` or plain text, an owner's `.vtt` replacing
the automatic ones, and the subtitles rendition the stream proxy adds to the master playlist."""

from __future__ import annotations

import re

from verriflo import captions, media, objects, outbox, playback, transcripts, webvtt
from verriflo.auth import OrgContext
from verriflo.errors import Conflict, NotFound

from cdn.models import CaptionsInfo, CaptionsUpload

SUBS = "subs"  # the subtitles rendition's name in stream URLs (no ladder rung is named so)
SUB_SEGMENT = re.compile(r"^sub_\d{5}\.vtt$")
VTT_TYPE, TEXT_TYPE = "text/vtt; charset=utf-8", "text/plain; charset=utf-8"


def info(video: media.Video) -> CaptionsInfo:
    """The public view of a video's captions."""
    state = transcripts.state(video)
    cues = None
    if state.status == "ready":
        cues = len(transcripts.get(video.org_id, video.id).segments)
    return CaptionsInfo(
        video_id=video.id,
        captions=state.status,
        reason=state.reason,
        source=state.source,
        language=state.language,
        cues=cues,
        updated_at=state.updated_at,
    )


def status(org: OrgContext, video_id: str) -> CaptionsInfo:
    """One of the org's videos' captions."""
    return info(media.get_video(org.org_id, video_id))


def _ready(video: media.Video) -> transcripts.CaptionsState:
    state = transcripts.state(video)
    if state.status == "pending":
        raise Conflict("The captions are still being made; try again shortly.")
    if state.status != "ready" or not state.prefix:
        raise NotFound(state.reason or "This video has no captions.")
    return state


def download(org: OrgContext, video_id: str, fmt: str) -> tuple[str, str]:
    """(content type, body) of a video's captions: the whole WebVTT file, or the transcript's text
    one sentence a line."""
    video = media.get_video(org.org_id, video_id)
    state = _ready(video)
    if fmt == "txt":
        return TEXT_TYPE, "".join(f"{s.text}\n" for s in transcripts.get(org.org_id, video_id).segments)
    bucket = media.media_settings().media_bucket
    return VTT_TYPE, objects.read_text(bucket, f"{state.prefix}captions.vtt", "This video has no captions.")


def upload(org: OrgContext, video_id: str, body: CaptionsUpload) -> CaptionsInfo:
    """An owner's WebVTT replaces the video's captions: checked first (nothing is written for a bad
    file), then published as a new revision (subtitles re-segmented, transcript rewritten with
    `source: upload`), then made current with its `video.captions_ready` in one update."""
    video = media.get_video(org.org_id, video_id)
    cues = webvtt.parse(body.vtt)
    duration = max(float(video.duration_s or 0), cues[-1].end_s)
    # the video's clock as the captions worker read it from the segments (else FFmpeg's start)
    mpegts = transcripts.state(video).mpegts or webvtt.MPEGTS_ZERO
    revision = transcripts.next_revision(video)
    name = f"u{revision}"
    prefix = captions.publish_files(video, name, cues, duration, mpegts)
    segments = [
        transcripts.TranscriptSegment(start_s=c.start_s, end_s=c.end_s, text=webvtt.plain(c.text))
        for c in cues
        if webvtt.plain(c.text)
    ]
    transcripts.save(video, segments, source="upload", duration_s=duration, language=body.language)
    value = captions.ready_state(prefix, "upload", revision, mpegts) | {"language": body.language}
    event = captions.ready_event(
        video, "upload", duration, event_id=f"evt_captions_ready_{video.id}_{name}", language=body.language
    )
    if transcripts.replace(video, value, [event]):
        outbox.drain(media.VIDEOS, video.id)
    return info(media.get_video(org.org_id, video_id))


def master_lines(video: media.Video, lines: list[str], token: str) -> list[str]:
    """The master playlist's lines with the subtitles rendition when the captions are ready:
    `#EXT-X-MEDIA:TYPE=SUBTITLES` (its URI through this proxy, with the token) and
    `SUBTITLES="subs"` on every variant."""
    state = transcripts.state(video)
    if state.status != "ready":
        return lines
    language = state.language or "en"
    media_line = (
        f'#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="{SUBS}",NAME="{language_name(language)}",'
        f'LANGUAGE="{language}",DEFAULT=YES,AUTOSELECT=YES,FORCED=NO,URI="{SUBS}/index.m3u8?token={token}"'
    )
    out, added = [], False
    for line in lines:
        if line.startswith("#EXT-X-STREAM-INF:"):
            if not added:
                out.append(media_line)
                added = True
            line = f'{line},SUBTITLES="{SUBS}"'
        out.append(line)
    return out


def language_name(code: str) -> str:
    """A player's label for a caption language."""
    return {"en": "English"}.get(code.split("-")[0], code)


def subtitles_playlist(video: media.Video) -> str:
    """The subtitles' media playlist with each WebVTT segment URL signed for a short while."""
    state = transcripts.state(video)
    if state.status != "ready" or not state.prefix:
        raise NotFound("No such rendition.")
    settings = media.media_settings()
    text = objects.read_text(settings.media_bucket, f"{state.prefix}{SUBS}/index.m3u8", "No such rendition.")
    ttl = settings.segment_ttl_s + int(video.duration_s or 0)
    lines = []
    for line in text.splitlines():
        if line and not line.startswith("#"):
            if not SUB_SEGMENT.fullmatch(line):
                raise NotFound("No such segment.")
            line = playback.segment_url(f"{state.prefix}{SUBS}/{line}", ttl)
        lines.append(line)
    return "\n".join(lines) + "\n"
