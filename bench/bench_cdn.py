"""CDN & media benchmarks, each beside a baseline measured in the same run on the same input.

Source: a synthetic 720p30 clip with a tone (lavfi testsrc2 + sine), ladder 360p + 720p.
1. Pipeline wall time (S3 download from moto, probe, one FFmpeg run making the ladder, poster and
   thumbnails with progress parsing and MongoDB progress writes, segments shipped while encoding,
   playlists, metering, events) beside bare `ffmpeg` running the very same command with nothing
   around it. Target ratio <= 1.10.
2. Speed as a multiple of realtime (source seconds / pipeline wall seconds). Target >= 2x.
3. Time to first playable (the moment the lowest rung's growing playlist, with its first segment
   stored, and a master naming it are in the bucket and the video is marked playable: a player can
   start) beside the full ladder. Target <= 35%.
4. What the in-run stills cost: the bare command beside the same command without them.
5. Peak memory: the Python process and the FFmpeg run.

Usage: .venv/bin/python bench/bench_cdn.py [--seconds 20] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import statistics
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from support import LambdaContext, Report, Result, local_stores, media_bench_env


def _peak_rss_kb(proc: subprocess.Popen) -> int:
    """Poll a child's VmHWM (its own high-water mark since exec) until it exits."""
    peak = 0
    while proc.poll() is None:
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
            peak = max(peak, int(re.search(r"VmHWM:\s+(\d+)", status).group(1)))
        except (OSError, AttributeError):
            pass
        time.sleep(0.05)
    return peak


def _bare(commands: list[list[str]], peak_kb: list[int]) -> float:
    """Run FFmpeg commands back to back with nothing around them; wall seconds (and each one's
    peak resident memory)."""
    start = time.perf_counter()
    for cmd in commands:
        cmd = [c for c in cmd]
        at = cmd.index("-progress")
        del cmd[at : at + 2]  # no progress pipe for the bare run
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL)
        peak_kb.append(_peak_rss_kb(proc))
        if proc.returncode != 0:
            raise RuntimeError(f"ffmpeg failed: {cmd}")
    return time.perf_counter() - start


def _cpu_s() -> float:
    """CPU seconds used so far by this process (moto's S3 included) and its finished children."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20, help="length of the 720p source")
    parser.add_argument("--runs", type=int, default=3, help="runs of each; the fastest counts")
    args = parser.parse_args()

    import moto

    media_bench_env(LADDER_RUNGS="360p,720p")
    report = Report("cdn & media")
    with local_stores(), moto.mock_aws(), tempfile.TemporaryDirectory(prefix="bench-cdn-") as tmp:
        import boto3
        from transcode import logic, pipeline
        from verriflo import media

        s3 = boto3.client("s3")
        for bucket in ("bench-uploads", "bench-media"):
            s3.create_bucket(Bucket=bucket)
        boto3.client("events").create_event_bus(Name="bench-events")
        work = Path(tmp)
        source = work / "source.mp4"
        from media_support import make_video  # tests/ is on the path once `support` is imported

        make_video(source, width=1280, height=720, seconds=args.seconds, rate=30)
        src = pipeline.probe(source)
        rungs = pipeline.plan_ladder(src)
        assert [r.name for r in rungs] == ["360p", "720p"], rungs

        early = pipeline.ffmpeg_settings().early_rendition
        bare_cmd = pipeline.encode_command(
            source, work / "bare", rungs, src, stills_dir=work / "bare" / "stills", event=early
        )
        plain_cmd = pipeline.encode_command(source, work / "plain", rungs, src, event=early)
        for folder in ("bare", "plain"):
            for r in rungs:
                (work / folder / r.name).mkdir(parents=True, exist_ok=True)
        (work / "bare" / "stills" / "thumbs").mkdir(parents=True, exist_ok=True)

        marks: dict[str, float] = {}
        real_publish = media.publish_renditions

        def timed_publish(*a, **k):
            marks["first"] = time.perf_counter()
            return real_publish(*a, **k)

        media.publish_renditions = timed_publish
        org_id = "org_" + uuid.uuid4().hex[:24]
        pipeline_s, first_s, bare_s, plain_s = [], [], [], []
        peaks: list[int] = []
        pipeline_cpu, bare_cpu = [], []

        def run_pipeline() -> None:
            video = media.insert_video(
                org_id, title="bench", size_bytes=source.stat().st_size, content_type="video/mp4"
            )
            s3.upload_file(str(source), "bench-uploads", video.source_key)
            cpu = _cpu_s()
            started = time.perf_counter()
            result = logic.process_upload("bench-uploads", video.source_key, LambdaContext().aws_request_id)
            pipeline_s.append(time.perf_counter() - started)
            pipeline_cpu.append(_cpu_s() - cpu)
            first_s.append(marks["first"] - started)
            assert result.outcome == "completed", result

        def run_bare() -> None:
            cpu = _cpu_s()
            bare_s.append(_bare([bare_cmd], peaks))
            bare_cpu.append(_cpu_s() - cpu)

        for index in range(args.runs):
            # Alternate which goes first, so a load change on the shared machine does not always
            # land on the same side.
            for step in (run_pipeline, run_bare) if index % 2 == 0 else (run_bare, run_pipeline):
                step()
            plain_s.append(_bare([plain_cmd], peaks))

        ratios = [w / b for w, b in zip(pipeline_s, bare_s, strict=True)]
        shares = [f / w for f, w in zip(first_s, pipeline_s, strict=True)]
        wall, bare = min(pipeline_s), min(bare_s)
        first = min(first_s)
        median = statistics.median(ratios)
        spread = f"{args.runs} runs: ratio {min(ratios):.2f}-{max(ratios):.2f}, median {median:.2f}"
        report.add(
            Result(
                "pipeline wall time vs bare ffmpeg (same command)",
                wall,
                "s",
                bare,
                "ratio <= 1.10",
                wall / bare <= 1.10,
                f"fastest of each; {spread}",
            ),
            Result(
                "pipeline CPU time vs bare ffmpeg's (same command)",
                min(pipeline_cpu),
                "s",
                min(bare_cpu),
                "informational",
                note="less load-sensitive; counts moto's in-process S3 as ours",
            ),
            Result(
                "speed, 720p -> 360p+720p (x realtime)",
                args.seconds / wall,
                "x",
                None,
                ">= 2x",
                args.seconds / wall >= 2,
                f"{args.seconds} s source",
            ),
            Result(
                "time to first playable vs full ladder",
                first,
                "s",
                wall,
                "ratio <= 0.35",
                first / wall <= 0.35,
                f"{args.runs} runs: {min(shares):.0%}-{max(shares):.0%}",
            ),
            Result(
                "poster + thumbnails in the same run vs without them (bare)",
                min(bare_s),
                "s",
                min(plain_s),
                "informational",
            ),
            Result(
                "peak memory, Python process (with moto in it)",
                resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "MB",
            ),
            Result(
                "peak memory, the FFmpeg run",
                max(peaks) / 1024,
                "MB",
                None,
                "< 1769 MB (1 vCPU)",
                max(peaks) / 1024 < 1769,
            ),
        )
        report.results[2].note += f"; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    report.print()


if __name__ == "__main__":
    main()
