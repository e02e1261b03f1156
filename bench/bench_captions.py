"""Captions benchmarks, each beside a baseline measured in the same run on the same input.

Source: a 640x360 clip whose audio is espeak-ng reading the test script three times (about a
minute of English speech).
1. Captioning speed (x realtime): the captions worker end to end (claim, source download from
   moto S3, decode, faster-whisper tiny.en int8 with beam 1, VAD and word times, sentences, the
   video's clock from its first segment, WebVTT segments and playlist stored, transcript, the
   outbox update with charge and event) beside the bare speech-to-text call on the same file.
   Target >= 10x realtime.
2. Word error rate of the transcript against the script. Target <= 15%.
3. The transcode with captioning enabled (the transcoder starts the captions on its way, as
   deployed; the worker runs in its own function) is what bench_cdn.py measures: its ratio to bare
   FFmpeg and its first playable share are the figures to read beside these.

Usage: .venv/bin/python bench/bench_captions.py [--repeat 3] [--runs 2]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from support import ROOT, LambdaContext, Report, Result, local_stores, media_bench_env

if str(ROOT / "layers" / "ai") not in sys.path:
    sys.path.insert(0, str(ROOT / "layers" / "ai"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="times the script is read")
    parser.add_argument("--runs", type=int, default=2, help="runs of each; the fastest counts")
    args = parser.parse_args()

    import moto

    media_bench_env(LADDER_RUNGS="360p", AI_SPEECH_PROVIDER="local")
    report = Report("captions")
    with local_stores(), moto.mock_aws(), tempfile.TemporaryDirectory(prefix="bench-captions-") as tmp:
        import boto3
        from captions import logic as captions_logic
        from speech_support import SCRIPT, speech_video, word_error_rate
        from transcode import logic as transcode_logic
        from verriflo import ledger, media, transcripts
        from verriflo_ai import speech

        s3 = boto3.client("s3")
        for bucket in ("bench-uploads", "bench-media"):
            s3.create_bucket(Bucket=bucket)
        boto3.client("events").create_event_bus(Name="bench-events")
        script = " ".join([SCRIPT] * args.repeat)
        source = speech_video(Path(tmp) / "lesson.mp4", script)
        org_id = "org_" + uuid.uuid4().hex[:24]
        ledger.grant(ledger.UsageEvent(entry_id="bench", org_id=org_id, service="grant", credits=10_000))
        conf = captions_logic.captioning()
        speech.transcribe_segments(str(source), conf)  # load the model once, as a warm function has

        bare_s, worker_s, wers = [], [], []
        duration = 0.0
        for index in range(args.runs):
            video = media.insert_video(
                org_id, title="bench", size_bytes=source.stat().st_size, content_type="video/mp4"
            )
            s3.upload_file(str(source), "bench-uploads", video.source_key)
            done = transcode_logic.process_upload("bench-uploads", video.source_key, f"t-{index}")
            assert done.outcome == "completed", done
            duration = media.get_video(org_id, video.id).duration_s or 0.0

            def bare() -> None:
                started = time.perf_counter()
                speech.transcribe_segments(str(source), conf)
                bare_s.append(time.perf_counter() - started)

            def worker(video_id: str = video.id) -> None:
                started = time.perf_counter()
                result = captions_logic.caption_video(org_id, video_id, LambdaContext().aws_request_id)
                worker_s.append(time.perf_counter() - started)
                assert result.outcome == "ready", result
                said = " ".join(s.text for s in transcripts.get(org_id, video_id).segments)
                wers.append(word_error_rate(script, said))

            for step in (bare, worker) if index % 2 == 0 else (worker, bare):
                step()

        best_worker, best_bare = min(worker_s), min(bare_s)
        load = f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
        report.add(
            Result(
                "captioning speed, worker end to end (x realtime)",
                duration / best_worker,
                "x",
                duration / best_bare,
                ">= 10x",
                duration / best_worker >= 10,
                f"{duration:.1f} s of speech; baseline: bare transcribe_segments; {load}",
            ),
            Result(
                "captioning wall time vs bare speech-to-text",
                best_worker,
                "s",
                best_bare,
                "informational",
                note=f"{args.runs} runs: worker {min(worker_s):.2f}-{max(worker_s):.2f} s, "
                f"bare {min(bare_s):.2f}-{max(bare_s):.2f} s",
            ),
            Result(
                "word error rate on the synthetic script",
                max(wers) * 100,
                "%",
                None,
                "<= 15%",
                max(wers) <= 0.15,
                f"{len(script.split())} words, espeak-ng en-us 150 wpm",
            ),
        )
    report.print()


if __name__ == "__main__":
    main()
