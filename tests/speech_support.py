"""Speech for the captions tests and benchmark: a video whose audio is espeak-ng reading a known
script, a silent one, and the word error rate of a transcript against its script."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

SCRIPT = (
    "Welcome to the lesson on photosynthesis. Plants use sunlight to turn water and carbon dioxide "
    "into sugar. This process happens inside the chloroplasts of the leaf. Oxygen is released into "
    "the air. Tomorrow we will measure how fast a plant grows in the dark."
)


def speech_video(
    path: Path, script: str = SCRIPT, *, width: int = 640, height: int = 360, tail_s: float = 1
) -> Path:
    """An H.264 + AAC MP4 whose audio is espeak-ng reading `script` (then `tail_s` of silence)."""
    espeak = shutil.which("espeak-ng")
    if not espeak:
        raise RuntimeError("espeak-ng is not installed: apt-get install -y espeak-ng")
    wav = path.with_suffix(".wav")
    subprocess.run([espeak, "-v", "en-us", "-s", "150", "-w", str(wav), script], check=True, timeout=60)
    subprocess.run(
        [
            "ffmpeg", "-v", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size={width}x{height}:rate=15",
            "-i", str(wav), "-af", f"apad=pad_dur={tail_s}", "-shortest",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "30",
            "-c:a", "aac", "-b:a", "64k", "-ar", "48000", str(path),
        ],
        check=True,
        timeout=120,
    )  # fmt: skip
    return path


def silent_video(path: Path, seconds: float = 4, *, tone: bool = False) -> Path:
    """An MP4 with an audio track of silence (or a steady tone: sound that is not speech)."""
    audio = (
        f"sine=frequency=440:sample_rate=48000:duration={seconds}"
        if tone
        else (f"anullsrc=r=48000:cl=stereo:d={seconds}")
    )
    subprocess.run(
        [
            "ffmpeg", "-v", "error", "-y",
            "-f", "lavfi", "-i", f"testsrc2=size=320x240:rate=15:duration={seconds}",
            "-f", "lavfi", "-i", audio, "-shortest",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-b:a", "64k", str(path),
        ],
        check=True,
        timeout=120,
    )  # fmt: skip
    return path


def words(text: str) -> list[str]:
    """Lower-case words without punctuation (WER compares words, not their spelling of commas)."""
    return re.findall(r"[a-z0-9']+", text.lower().replace("-", " "))


def word_error_rate(reference: str, hypothesis: str) -> float:
    """(substitutions + deletions + insertions) / reference words: a Levenshtein distance over words."""
    ref, hyp = words(reference), words(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i]
        for j, h in enumerate(hyp, 1):
            current.append(min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h)))
        previous = current
    return previous[-1] / max(1, len(ref))
