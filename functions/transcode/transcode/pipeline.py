"""The media pipeline as plain Python over local files: probe a source, plan an HLS ladder that
suits it, encode the ladder, poster and thumbnails in one FFmpeg run with one decode feeding them
all (EVENT playlists when the video is published while encoding), write the master playlist, and
join chunk playlists. No S3 and no database here: the caller moves
files and records state, which keeps this testable with nothing but FFmpeg.

One module past 500 lines on purpose: the probe, the ladder, the FFmpeg command and the playlist
text all follow one HLS contract (the segment grid `SEGMENT_S`, segment names, EVENT vs VOD
playlists, `Rung` and `Probe`), and a change to one must be read against the others.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from pydantic import Field
from verriflo.settings import EnvSettings, SettingsConfigDict

SEGMENT_S = 4  # HLS segment length; keyframes are forced on this grid so renditions and chunks align
# Published while encoding, a video starts with a 1 s segment (then 3 s, then SEGMENT_S): a player
# can start as soon as one second is encoded.
FIRST_SEGMENT_S = 1
LAYER_BIN = Path("/opt/bin")
AUDIO_BPS = 128_000
# (name, height, video bits/s): a ladder in the range the common streaming guides recommend.
LADDER = (
    ("360p", 360, 800_000),
    ("540p", 540, 1_400_000),
    ("720p", 720, 2_800_000),
    ("1080p", 1080, 5_000_000),
)
DECODE_ERRORS = ("corrupt decoded frame", "error while decoding", "Invalid data found when processing input")
POSTER, THUMBS = "poster.jpg", "thumbs/thumb_%02d.jpg"  # in the stills folder
# Containers that ffprobe reports for still images; a "video" of one frame is not a video.
IMAGE_FORMATS = {"image2", "png_pipe", "jpeg_pipe", "webp_pipe", "gif", "bmp_pipe", "tiff_pipe", "svg_pipe"}


class FfmpegSettings(EnvSettings):
    """Where the FFmpeg binaries are and how they run."""

    model_config = SettingsConfigDict(extra="ignore")

    ffmpeg_path: str | None = Field(default=None, description="default: the FFmpeg layer, then PATH")
    ffprobe_path: str | None = Field(default=None, description="default: the FFmpeg layer, then PATH")
    x264_preset: str = "veryfast"
    ffmpeg_threads: int = Field(default=0, ge=0, description="0 lets FFmpeg use every vCPU")
    early_rendition: bool = Field(
        default=True, description="publish the lowest rung progressively (HLS EVENT) while encoding"
    )
    thumbnails: int = Field(default=4, ge=0, le=20)
    ladder_rungs: str = Field(default="360p,540p,720p,1080p", description="which rungs of LADDER to offer")
    tolerate_decode_errors: bool = Field(default=False, description="publish sources with corrupt frames")


@cache
def ffmpeg_settings() -> FfmpegSettings:
    """The FFmpeg settings, read once per process."""
    return FfmpegSettings()


UNPACKED_BIN = Path(tempfile.gettempdir()) / "verriflo-bin"


def _unpacked(packed: Path) -> str:
    """A binary the layer ships gzipped (to stay inside Lambda's 250 MB), unpacked into /tmp once
    per execution environment (about half a second for ffprobe)."""
    import gzip

    target = UNPACKED_BIN / packed.stem
    if not target.exists():
        UNPACKED_BIN.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}")
        with gzip.open(packed) as source, partial.open("wb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
        partial.chmod(0o755)
        partial.replace(target)  # atomic: a concurrent caller sees the whole file or none
    return str(target)


def _binary(name: str, configured: str | None) -> str:
    if configured:
        return configured
    in_layer = LAYER_BIN / name
    if in_layer.exists():
        return str(in_layer)
    if (LAYER_BIN / f"{name}.gz").exists():
        return _unpacked(LAYER_BIN / f"{name}.gz")
    found = shutil.which(name)
    if not found:
        raise RuntimeError(f"{name} not found: set {name.upper()}_PATH or attach the FFmpeg layer")
    return found


def ffmpeg_bin() -> str:
    """The ffmpeg executable: FFMPEG_PATH, else the layer's, else PATH's."""
    return _binary("ffmpeg", ffmpeg_settings().ffmpeg_path)


def ffprobe_bin() -> str:
    """The ffprobe executable: FFPROBE_PATH, else the layer's, else PATH's."""
    return _binary("ffprobe", ffmpeg_settings().ffprobe_path)


class InvalidMedia(Exception):
    """The source is not a video we can transcode; the message is for the video's owner."""


class EncodeFailed(Exception):
    """FFmpeg failed on a source that probed fine."""


@dataclass(frozen=True)
class Probe:
    """What we need to know about a source."""

    duration_s: float
    width: int
    height: int
    fps: float
    has_audio: bool
    format_name: str
    video_codec: str


@dataclass(frozen=True)
class Rung:
    """One rendition to produce."""

    name: str
    width: int
    height: int
    video_bps: int

    @property
    def bandwidth(self) -> int:
        """Peak bits/s as the master playlist states it (video cap plus audio)."""
        return self.video_bps + AUDIO_BPS


# --- probe -----------------------------------------------------------------------------------------


def _fps(rate: str | None) -> float:
    try:
        num, _, den = (rate or "0/1").partition("/")
        return float(num) / float(den or 1) if float(den or 1) else 0.0
    except ValueError:
        return 0.0


def _input_options(source: str | Path) -> list[str]:
    """For a source read over HTTP (a presigned S3 URL): a ranged read can be cut off mid-body, and
    FFmpeg would then read a short file and report damaged frames; reconnect and resume instead."""
    if not str(source).startswith(("http://", "https://")):
        return []
    reconnect = (
        "-reconnect 1 -reconnect_on_network_error 1 -reconnect_on_http_error 5xx -reconnect_delay_max 10"
    )
    return reconnect.split()


def probe(source: str | Path) -> Probe:
    """Read a source's streams; InvalidMedia for anything that is not a playable video."""
    if isinstance(source, Path) and (not source.exists() or source.stat().st_size == 0):
        raise InvalidMedia("The uploaded file is empty.")
    proc = subprocess.run(
        [
            ffprobe_bin(),
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
            *_input_options(source),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        raise InvalidMedia(
            "The file is not a video we can read: it is corrupt, truncated or of an unknown format."
        )
    info = json.loads(proc.stdout or "{}")
    fmt = info.get("format") or {}
    streams = info.get("streams") or []
    video = next(
        (
            s
            for s in streams
            if s.get("codec_type") == "video" and not (s.get("disposition") or {}).get("attached_pic")
        ),
        None,
    )
    format_name = str(fmt.get("format_name", ""))
    if video is None:
        raise InvalidMedia("The file has no video stream.")
    if set(format_name.split(",")) & IMAGE_FORMATS:
        raise InvalidMedia("The file is a still image, not a video.")
    try:
        duration = float(fmt.get("duration") or video.get("duration") or 0)
    except ValueError:
        duration = 0.0
    if duration <= 0:
        raise InvalidMedia("The video has no duration: it is empty or truncated.")
    width, height = int(video.get("width") or 0), int(video.get("height") or 0)
    if width <= 0 or height <= 0:
        raise InvalidMedia("The video has no picture size.")
    rotation = 0
    for side in video.get("side_data_list") or []:
        rotation = int(side.get("rotation", rotation) or 0)
    rotation = int((video.get("tags") or {}).get("rotate", rotation) or 0)
    if abs(rotation) % 180 == 90:  # FFmpeg auto-rotates, so the picture we encode is turned
        width, height = height, width
    return Probe(
        duration_s=duration,
        width=width,
        height=height,
        fps=_fps(video.get("avg_frame_rate")) or _fps(video.get("r_frame_rate")) or 30.0,
        has_audio=any(s.get("codec_type") == "audio" for s in streams),
        format_name=format_name,
        video_codec=str(video.get("codec_name", "")),
    )


# --- ladder ----------------------------------------------------------------------------------------


def _even(value: float) -> int:
    return max(2, int(round(value / 2)) * 2)


def plan_ladder(src: Probe) -> list[Rung]:
    """The rungs this source allows, lowest first: never above the source's own height."""

    def rung(name: str, height: int, bps: int) -> Rung:
        return Rung(name, _even(src.width * height / src.height), height, bps)

    offered = {name.strip() for name in ffmpeg_settings().ladder_rungs.split(",")}
    rungs = [rung(n, h, bps) for n, h, bps in LADDER if h <= src.height and n in offered]
    if not rungs:
        # Smaller than our lowest rung: one rendition at the source's size, bitrate by area.
        height = _even(src.height)
        bps = max(200_000, int(LADDER[0][2] * (src.width * src.height) / (640 * 360)))
        rungs = [Rung(f"{height}p", _even(src.width), height, bps)]
    return rungs


# --- ffmpeg commands -------------------------------------------------------------------------------


def encode_command(
    source: str | Path,
    out_dir: Path,
    rungs: list[Rung],
    src: Probe,
    *,
    start_s: float | None = None,
    length_s: float | None = None,
    segment_prefix: str = "seg_",
    stills_dir: Path | None = None,
    event: bool = False,
) -> list[str]:
    """One FFmpeg run: one decode, split and scaled into every rung, each to its own HLS folder.

    With `stills_dir`, the same run also writes the poster and thumbnails there (two more branches
    of the split that pass only the chosen frames on, so they cost no extra decode). With `event`,
    the media playlists are HLS EVENT playlists, rewritten after every segment, so the video can be
    played while it is still being encoded.
    """
    settings = ffmpeg_settings()
    cmd = [ffmpeg_bin(), "-hide_banner", "-nostdin", "-y", "-v", "error", "-nostats", "-progress", "pipe:1"]
    if start_s:
        cmd += ["-ss", f"{start_s:.3f}"]
    if length_s:
        cmd += ["-t", f"{length_s:.3f}"]
    cmd += [*_input_options(source), "-i", str(source)]
    thumbs = ffmpeg_settings().thumbnails if stills_dir else 0
    labels = [f"[v{i}]" for i in range(len(rungs))]
    labels += (["[poster]"] if stills_dir else []) + (["[thumbs]"] if thumbs else [])
    graph = f"[0:v:0]split={len(labels)}{''.join(labels)};" if len(labels) > 1 else "[0:v:0]null[v0];"
    graph += ";".join(
        f"[v{i}]scale={r.width}:{r.height}:flags=bicubic,format=yuv420p[o{i}]" for i, r in enumerate(rungs)
    )
    if stills_dir:
        graph += ";" + _stills_graph(src, thumbs)
    cmd += ["-filter_complex", graph]
    stream_map = []
    for i, rung in enumerate(rungs):
        cmd += ["-map", f"[o{i}]"]
        if src.has_audio:
            cmd += ["-map", "0:a:0"]
        stream_map.append(f"v:{i},a:{i},name:{rung.name}" if src.has_audio else f"v:{i},name:{rung.name}")
    for i, rung in enumerate(rungs):
        cmd += [
            f"-b:v:{i}",
            str(rung.video_bps),
            f"-maxrate:v:{i}",
            str(rung.video_bps),
            f"-bufsize:v:{i}",
            str(rung.video_bps * 2),
        ]
    cmd += [
        "-c:v",
        "libx264",
        "-preset",
        settings.x264_preset,
        "-profile:v",
        "high",
        "-force_key_frames",
        (
            f"expr:gte(t,if(lt(n_forced,2),n_forced*{FIRST_SEGMENT_S},{SEGMENT_S}*(n_forced-1)))"
            if event
            else f"expr:gte(t,n_forced*{SEGMENT_S})"
        ),
        "-sc_threshold",
        "0",
        "-threads",
        str(settings.ffmpeg_threads),
    ]
    if src.has_audio:
        cmd += ["-c:a", "aac", "-b:a", str(AUDIO_BPS), "-ac", "2", "-ar", "48000"]
    if start_s:
        # Chunks keep the source's timeline so their segments join into one continuous playlist.
        cmd += ["-output_ts_offset", f"{start_s:.3f}"]
    cmd += [
        "-f",
        "hls",
        "-hls_time",
        str(SEGMENT_S),
        *(["-hls_init_time", str(FIRST_SEGMENT_S)] if event else []),
        "-hls_playlist_type",
        "event" if event else "vod",
        # temp_file: a segment appears under its name only when complete, so it can be shipped
        # to storage while FFmpeg works on the next ones.
        "-hls_flags",
        "independent_segments+temp_file",
        "-hls_segment_filename",
        str(out_dir / "%v" / f"{segment_prefix}%05d.ts"),
        "-var_stream_map",
        " ".join(stream_map),
        str(out_dir / "%v" / "index.m3u8"),
    ]
    if stills_dir:
        cmd += ["-map", "[poster_o]", "-frames:v", "1", "-q:v", "4", "-update", "1", str(stills_dir / POSTER)]
    if thumbs:
        cmd += ["-map", "[thumbs_o]", "-fps_mode", "passthrough", "-q:v", "4", str(stills_dir / THUMBS)]
    return cmd


def still_times(src: Probe, count: int) -> tuple[float, list[float]]:
    """When the poster and the `count` thumbnails are taken (seconds from the start)."""
    # The poster a little way in: first frames are often black or a fade-in.
    return min(src.duration_s * 0.1, 5.0), [src.duration_s * (i + 0.5) / count for i in range(count)]


def _first_at_or_after(times: list[float]) -> str:
    # A frame is picked when it is the first at or after one of the times: the last picked frame
    # (none yet: -1) came before that time.
    before = "if(isnan(prev_selected_t),-1,prev_selected_t)"
    return "+".join(f"gte(t,{at:.3f})*lt({before},{at:.3f})" for at in times)


def _stills_graph(src: Probe, count: int) -> str:
    # PTS-STARTPTS: the times count from the first frame, whatever the source's start time.
    poster_at, thumbs_at = still_times(src, count)
    graph = (
        f"[poster]setpts=PTS-STARTPTS,select='{_first_at_or_after([poster_at])}',"
        f"scale={_even(min(1280, src.width))}:-2[poster_o]"
    )
    if count:
        graph += (
            f";[thumbs]setpts=PTS-STARTPTS,select='{_first_at_or_after(thumbs_at)}',"
            f"scale={_even(min(320, src.width))}:-2[thumbs_o]"
        )
    return graph


def run_ffmpeg(
    cmd: list[str],
    expected_s: float,
    on_progress: Callable[[float], None] | None = None,
    timeout_s: float | None = None,
) -> tuple[float, str]:
    """Run FFmpeg, reporting the fraction done from `-progress pipe:1`; returns seconds encoded and
    what FFmpeg said on stderr (errors only)."""
    encoded = 0.0
    with tempfile.TemporaryFile() as errors:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors, text=True, bufsize=1)
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                key, _, value = line.strip().partition("=")
                if key == "out_time_us" and value.lstrip("-").isdigit():
                    encoded = max(encoded, int(value) / 1_000_000)
                    if on_progress and expected_s > 0:
                        on_progress(min(1.0, encoded / expected_s))
            proc.wait(timeout=timeout_s)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        errors.seek(0)
        said = errors.read().decode(errors="replace")
        if proc.returncode != 0:
            raise EncodeFailed("FFmpeg failed: " + " | ".join(said.strip().splitlines()[-3:]))
    return encoded, said


def encode(
    source: str | Path,
    out_dir: Path,
    rungs: list[Rung],
    src: Probe,
    *,
    on_progress: Callable[[float], None] | None = None,
    start_s: float | None = None,
    length_s: float | None = None,
    segment_prefix: str = "seg_",
    stills_dir: Path | None = None,
    event: bool = False,
) -> float:
    """Encode `rungs` (and with `stills_dir` the poster and thumbnails) in one FFmpeg run;
    InvalidMedia when the source ends well before its duration."""
    for rung in rungs:
        (out_dir / rung.name).mkdir(parents=True, exist_ok=True)
    if stills_dir:
        (stills_dir / THUMBS).parent.mkdir(parents=True, exist_ok=True)
    expected = length_s or max(0.0, src.duration_s - (start_s or 0))
    cmd = encode_command(
        source,
        out_dir,
        rungs,
        src,
        start_s=start_s,
        length_s=length_s,
        segment_prefix=segment_prefix,
        stills_dir=stills_dir,
        event=event,
    )
    encoded, said = run_ffmpeg(cmd, expected, on_progress)
    # A file cut off mid-stream (an interrupted upload of a TS, say) probes as a shorter video and
    # decodes "successfully" with corrupt last frames; we refuse rather than publish garbage.
    if any(sign in said for sign in DECODE_ERRORS) and not ffmpeg_settings().tolerate_decode_errors:
        raise InvalidMedia("The video is damaged or truncated: some frames cannot be decoded.")
    # A truncated file can probe fine (its header promises the whole length) and then decode to
    # an early end; publishing that would be a video that stops in the middle.
    if expected > 2 and encoded < 0.9 * expected - 1:
        raise InvalidMedia("The video ends early: the file looks truncated.")
    if stills_dir and not (stills_dir / POSTER).exists():
        raise EncodeFailed("FFmpeg wrote no poster frame.")
    return encoded


def stills(stills_dir: Path) -> tuple[Path, list[Path]]:
    """The poster and thumbnails an encode with `stills_dir` wrote."""
    return stills_dir / POSTER, sorted((stills_dir / THUMBS).parent.glob("thumb_*.jpg"))


def snapshots(
    source: str | Path, out_dir: Path, src: Probe, count: int | None = None
) -> tuple[Path, list[Path]]:
    """A poster and `count` thumbnails, one small FFmpeg run each (fast keyframe seeking): for the
    chunked path, whose chunks each see only part of the source."""
    from concurrent.futures import ThreadPoolExecutor

    count = ffmpeg_settings().thumbnails if count is None else count
    (out_dir / "thumbs").mkdir(parents=True, exist_ok=True)
    poster = out_dir / POSTER
    poster_at, thumbs_at = still_times(src, count)
    times = [poster_at, *thumbs_at]
    targets = [poster] + [out_dir / "thumbs" / f"thumb_{i + 1:02d}.jpg" for i in range(count)]
    widths = [min(1280, src.width)] + [min(320, src.width)] * count

    def still(at: float, target: Path, width: int) -> subprocess.CompletedProcess:
        # One process per still: a single FFmpeg with several inputs keeps demuxing all of them
        # until the last output is done (measured 7x slower). -noaccurate_seek takes the keyframe at
        # or before the time instead of decoding up to it: any frame near the time will do.
        cmd = [
            ffmpeg_bin(),
            "-hide_banner",
            "-nostdin",
            "-y",
            "-v",
            "error",
            "-noaccurate_seek",
            "-ss",
            f"{at:.3f}",
            "-i",
            str(source),
            "-map",
            "0:v:0",
            "-frames:v",
            "1",
            "-vf",
            f"scale={_even(width)}:-2",
            "-q:v",
            "4",
            str(target),
        ]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)

    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = list(pool.map(still, times, targets, widths))
    made = [t for t in targets if t.exists() and t.stat().st_size > 0]
    if poster not in made:
        raise EncodeFailed("FFmpeg could not take a poster frame: " + runs[0].stderr.strip()[-300:])
    return poster, [t for t in made if t != poster]


# --- playlists -------------------------------------------------------------------------------------


def codecs(has_audio: bool) -> str:
    """RFC 6381 codecs of our renditions (H.264 High, AAC-LC)."""
    return "avc1.640028,mp4a.40.2" if has_audio else "avc1.640028"


def master_playlist(rungs: list[Rung], has_audio: bool) -> str:
    """The master playlist listing `rungs` (lowest first, so players start small and climb)."""
    lines = ["#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for rung in rungs:
        bandwidth = rung.bandwidth if has_audio else rung.video_bps
        lines.append(
            f"#EXT-X-STREAM-INF:BANDWIDTH={bandwidth},AVERAGE-BANDWIDTH={int(bandwidth * 0.8)},"
            f'RESOLUTION={rung.width}x{rung.height},CODECS="{codecs(has_audio)}"'
        )
        lines.append(f"{rung.name}/index.m3u8")
    return "\n".join(lines) + "\n"


def as_vod(text: str) -> str:
    """A finished EVENT media playlist as a VOD one (for playlists no player has seen yet: RFC 8216
    lets a published EVENT playlist only grow and end, never change its type)."""
    if "#EXT-X-ENDLIST" not in text:
        raise EncodeFailed("The playlist is not finished.")
    return text.replace("#EXT-X-PLAYLIST-TYPE:EVENT", "#EXT-X-PLAYLIST-TYPE:VOD")


def playlist_segments(text: str) -> list[tuple[str, str]]:
    """(EXTINF line, URI) pairs of a media playlist."""
    pairs, extinf = [], None
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("#EXTINF"):
            extinf = line
        elif line and not line.startswith("#") and extinf:
            pairs.append((extinf, line))
            extinf = None
    return pairs


def join_playlists(chunk_playlists: list[str], *, event: bool = False, ended: bool = True) -> str:
    """One media playlist from chunk playlists whose segments sit in the same folder: VOD, or with
    `event` an EVENT playlist (still growing unless `ended`)."""
    segments = [pair for text in chunk_playlists for pair in playlist_segments(text)]
    if not segments:
        raise EncodeFailed("No segments to join.")
    longest = max(float(extinf.split(":", 1)[1].split(",")[0]) for extinf, _ in segments)
    lines = [
        "#EXTM3U",
        "#EXT-X-VERSION:3",
        f"#EXT-X-TARGETDURATION:{int(longest + 0.999)}",
        "#EXT-X-MEDIA-SEQUENCE:0",
        f"#EXT-X-PLAYLIST-TYPE:{'EVENT' if event else 'VOD'}",
        "#EXT-X-INDEPENDENT-SEGMENTS",
    ]
    for extinf, uri in segments:
        lines += [extinf, uri]
    if ended or not event:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


def plan_chunks(duration_s: float, chunk_s: float) -> list[tuple[int, float, float]]:
    """(index, start, length) of each chunk; lengths are whole segments so chunks join cleanly."""
    chunk_s = max(SEGMENT_S, round(chunk_s / SEGMENT_S) * SEGMENT_S)
    chunks, start, index = [], 0.0, 0
    while start < duration_s - 0.05:
        length = min(chunk_s, duration_s - start)
        chunks.append((index, start, length))
        start += chunk_s
        index += 1
    # A sliver of a last chunk is not worth a Lambda: fold it into the one before.
    if len(chunks) > 1 and chunks[-1][2] < SEGMENT_S:
        last = chunks.pop()
        i, s, length = chunks.pop()
        chunks.append((i, s, length + last[2]))
    return chunks


def files_under(root: Path) -> list[Path]:
    """Every file below `root`, sorted (uploads happen in a stable order)."""
    return sorted(p for p in root.rglob("*") if p.is_file())
