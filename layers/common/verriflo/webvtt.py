"""WebVTT for captions: parse (strictly, for owners' uploads), write, and cut into HLS subtitle
segments. Pure functions, no I/O: the captions function and the cdn's upload route share them.

A parser of our own, not webvtt-py: it is not in a locked venv or layer here, and what an upload
needs is small and strict (the WEBVTT signature, cue timings `hh:mm:ss.ttt --> hh:mm:ss.ttt` with
optional settings, text lines; NOTE, STYLE and REGION blocks skipped). Anything else is refused
with the line it is on, so a bad file never replaces good captions.

HLS subtitles (RFC 8216 3.5, Apple's HLS authoring spec): each segment is a whole WebVTT file with
`X-TIMESTAMP-MAP=MPEGTS:<pts>,LOCAL:00:00:00.000`, mapping the cue times (seconds from the
video's start) onto the transport stream's clock: `<pts>` is the presentation time of the video's
first frame in its segments. FFmpeg's MPEG-TS muxer starts that clock at 1.4 s (`muxdelay` 0.7 s,
twice) plus the encoder's reordering delay (two frames with x264's B-frames); the captions worker
reads it from the first segment (`captions.logic.video_clock`), 126000 (1.4 s) when it cannot.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from verriflo.errors import ValidationFailed

MPEGTS_ZERO = 126_000  # 90 kHz ticks: FFmpeg's MPEG-TS muxer puts the media's second 0 at 1.4 s
MAX_CUES = 20_000
MAX_CUE_CHARS = 1_000

_TIME = r"(?:(\d{2,}):)?([0-5]\d):([0-5]\d)\.(\d{3})"
_TIMING = re.compile(rf"^{_TIME}[ \t]+-->[ \t]+{_TIME}(?:[ \t]+.*)?$")
_TAG = re.compile(r"<[^>]*>")


@dataclass(frozen=True, slots=True)
class Cue:
    """One caption: shown from `start_s` to `end_s` (seconds from the video's start)."""

    start_s: float
    end_s: float
    text: str


def _seconds(h: str | None, m: str, s: str, ms: str) -> float:
    return int(h or 0) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000


def stamp(seconds: float) -> str:
    """`hh:mm:ss.ttt` of a time in seconds."""
    total = max(0, round(seconds * 1000))
    h, rest = divmod(total, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def parse(text: str) -> list[Cue]:
    """The cues of a WebVTT file, in time order; ValidationFailed naming the line of the first
    thing that is not WebVTT (or when there is no cue at all)."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").lstrip("\ufeff").split("\n")
    if not re.match(r"^WEBVTT(?:[ \t].*)?$", lines[0]):
        raise ValidationFailed("'vtt': a WebVTT file starts with the line 'WEBVTT'.")
    cues: list[Cue] = []
    i = 1
    while i < len(lines) and lines[i].strip():  # header lines after the signature
        i += 1
    while i < len(lines):
        if not lines[i].strip():
            i += 1
            continue
        block_start = i
        block = []
        while i < len(lines) and lines[i].strip():
            block.append(lines[i])
            i += 1
        head = block[0]
        if head.startswith(("NOTE", "STYLE", "REGION")) and "-->" not in head:
            continue
        timing_at = 0 if "-->" in head else 1
        if timing_at >= len(block) or "-->" not in block[timing_at]:
            raise ValidationFailed(f"'vtt': line {block_start + 1}: expected a cue timing 'start --> end'.")
        match = _TIMING.match(block[timing_at].strip())
        if not match:
            raise ValidationFailed(
                f"'vtt': line {block_start + timing_at + 1}: a cue timing is hh:mm:ss.ttt --> hh:mm:ss.ttt."
            )
        g = match.groups()
        start, end = _seconds(*g[0:4]), _seconds(*g[4:8])
        if end <= start:
            raise ValidationFailed(
                f"'vtt': line {block_start + timing_at + 1}: a cue must end after it starts."
            )
        body = "\n".join(block[timing_at + 1 :]).strip()
        if len(body) > MAX_CUE_CHARS:
            raise ValidationFailed(
                f"'vtt': line {block_start + 1}: a cue is limited to {MAX_CUE_CHARS} characters."
            )
        if body:
            cues.append(Cue(start, end, body))
        if len(cues) > MAX_CUES:
            raise ValidationFailed(f"'vtt': at most {MAX_CUES} cues.")
    if not cues:
        raise ValidationFailed("'vtt': the file has no cues.")
    return sorted(cues, key=lambda c: (c.start_s, c.end_s))


def _escape(text: str) -> str:
    # Cue text is WebVTT markup: a transcript's "<" or "&" must not become a tag or an entity.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("-->", "--&gt;")


def render(cues: list[Cue], *, mpegts: int | None = None) -> str:
    """A WebVTT file of `cues` (with the HLS timestamp map when `mpegts` is given)."""
    lines = ["WEBVTT"]
    if mpegts is not None:
        lines.append(f"X-TIMESTAMP-MAP=MPEGTS:{mpegts},LOCAL:00:00:00.000")
    lines.append("")
    for cue in cues:
        lines += [f"{stamp(cue.start_s)} --> {stamp(cue.end_s)}", cue.text, ""]
    return "\n".join(lines)


def from_transcript(segments: list[tuple[float, float, str]]) -> list[Cue]:
    """Cues of plain-text transcript segments (escaped as WebVTT text)."""
    return [Cue(s, e, _escape(t)) for s, e, t in segments if t.strip()]


def plain(cue_text: str) -> str:
    """A cue's words without markup (tags, entities, line breaks): what a transcript keeps."""
    text = _TAG.sub("", cue_text)
    for entity, char in (("&lt;", "<"), ("&gt;", ">"), ("&nbsp;", " "), ("&lrm;", ""), ("&rlm;", "")):
        text = text.replace(entity, char)
    return " ".join(text.replace("&amp;", "&").split())


def segments(
    cues: list[Cue], duration_s: float, segment_s: float, mpegts: int = MPEGTS_ZERO
) -> tuple[str, list[tuple[str, str]]]:
    """HLS subtitles: the VOD media playlist and its segments (name, WebVTT text), one segment per
    `segment_s` of the video; a cue spanning a boundary is in both segments (players drop the
    repeat: same times, same text)."""
    duration = max(duration_s, max((c.end_s for c in cues), default=0.0), 0.001)
    count = max(1, math.ceil(duration / segment_s - 1e-9))
    files: list[tuple[str, str]] = []
    playlist = [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        f"#EXT-X-TARGETDURATION:{math.ceil(segment_s)}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD",
    ]
    for n in range(count):
        start, end = n * segment_s, min(duration, (n + 1) * segment_s)
        inside = [c for c in cues if c.start_s < end and c.end_s > start]
        name = f"sub_{n:05d}.vtt"
        files.append((name, render(inside, mpegts=mpegts)))
        playlist += [f"#EXTINF:{end - start:.3f},", name]
    playlist.append("#EXT-X-ENDLIST")
    return "\n".join(playlist) + "\n", files
