"""Soak: many requests through the deployed API on LocalStack, and what every server holds after.

Brings up a stack of its own (scripts/stack.py, stack `soak-<pid>`, torn down at the end) and
sends `--requests` (default 30,000) requests through the API Gateway stage, from `--workers`
threads, within `--max-minutes`:

* mostly cheap authenticated reads (`/v1/auth/whoami`, `/v1/billing/balance`, `/v1/cdn/videos`)
  and every tenth one `/v1/health` (no authorizer);
* every `--upload-every`-th: an upload (`POST /v1/cdn/videos`, then the file PUT to its presigned
  S3 URL; S3's notification runs the transcoder);
* every `--room-every`-th: a room lifecycle (create, join, both participants joined at the LiveKit
  stand-in, whose webhooks reach the rooms function; status until it counts them; end), so the
  stand-in delivers about six webhooks per lifecycle.

It reports, for LocalStack, the MongoDB-wire server, Redis, the LiveKit stand-in and LocalStack's
Lambda processes (summed): memory maps, RSS and threads at the start (after a warm-up that starts
every function used) and at the end, with their ratio, plus every tenth of the way for LocalStack;
and requests answered (any status below 500) and failed (5xx, no answer). A process that keeps
something per request grows with the count; the issue this guards against (LocalStack keeping a
thread stack per Lambda invocation) added ~4 maps per request and killed LocalStack at ~15,000.

Run: `flock /tmp/verriflo-e2e.lock .venv/bin/python bench/bench_soak.py [--requests N]`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import httpx

# isort: off
from support import ROOT, Report, Result  # first: it puts tests/ (proc_support) on the path
from proc_support import ProcFigures, stack_figures
from support_stack import (
    Executions,
    deployed,
    s3_bytes_in_memory,
    step_functions_kept,
    stored_log_bytes,
)
# isort: on

KEY = "VF-ORG-ID"
READS = ("/v1/auth/whoami", "/v1/billing/balance", "/v1/cdn/videos")
# before the start figures, with the same workers: cold starts and the environments concurrency
# adds (up to one per worker and function) are not a leak
WARMUP_REQUESTS = 400
STATUS_WAIT_S = 30


class Tally:
    """Requests made and their outcome, per kind; thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.sent = 0
        self.answered: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.failures: list[str] = []
        self.uncounted_joins = 0  # rooms whose joins the function never counted (webhooks lost)

    def record(self, kind: str, status: int | None, detail: str = "") -> bool:
        ok = status is not None and status < 500
        with self.lock:
            self.sent += 1
            (self.answered if ok else self.failed)[kind] += 1
            if not ok and len(self.failures) < 20:
                self.failures.append(f"{kind}: {status} {detail[:200]}")
        return ok


class Soak:
    """The workload against one deployed stack."""

    def __init__(self, env: dict[str, str], clip: bytes, tally: Tally) -> None:
        self.api = env["API_URL"]
        self.key = env["DEMO_API_KEY"]
        self.org = env["DEMO_ORG_ID"]
        self.livekit = env["LIVEKIT_URL"]
        self.clip = clip
        self.tally = tally

    def call(self, http: httpx.Client, kind: str, method: str, url: str, **kwargs) -> httpx.Response | None:
        try:
            reply = http.request(method, url, **kwargs)
        except httpx.HTTPError as exc:
            self.tally.record(kind, None, repr(exc))
            return None
        self.tally.record(kind, reply.status_code, reply.text)
        return reply

    def read(self, http: httpx.Client, i: int) -> None:
        if i % 10 == 0:
            self.call(http, "health", "GET", f"{self.api}/v1/health")
        else:
            self.call(http, "read", "GET", self.api + READS[i % len(READS)], headers={KEY: self.key})

    def upload(self, http: httpx.Client) -> None:
        created = self.call(
            http,
            "upload",
            "POST",
            f"{self.api}/v1/cdn/videos",
            headers={KEY: self.key},
            json={"title": "soak", "sizeBytes": len(self.clip)},
        )
        if created is None or created.status_code != 201:
            return
        upload = created.json()["data"]["upload"]
        self.call(http, "upload", "PUT", upload["url"], content=self.clip, headers=upload["headers"])

    def room(self, http: httpx.Client) -> None:
        """Create, join, two participants in at the stand-in (webhooks), status, end."""
        room_id = f"soak-{uuid.uuid4().hex[:10]}"
        headers = {KEY: self.key}
        created = self.call(
            http,
            "room",
            "POST",
            f"{self.api}/v1/room/create",
            headers=headers,
            json={"roomId": room_id, "title": "Soak", "participant": _person("t", "TEACHER")},
        )
        if created is None or created.status_code != 200:
            return
        joined = self.call(
            http,
            "room",
            "POST",
            f"{self.api}/v1/room/{room_id}/join",
            headers=headers,
            json={"participant": _person("s", "STUDENT")},
        )
        tokens = [created.json()["data"]["token"]]
        if joined is not None and joined.status_code == 200:
            tokens.append(joined.json()["data"]["token"])
        for token in tokens:  # a browser joins with its own token; the stand-in posts the webhooks
            self.join(f"/admin/rooms/{self.org}.{room_id}/participants", token)
        deadline = time.monotonic() + STATUS_WAIT_S
        while time.monotonic() < deadline:  # bounded: the webhooks travel stand-in -> API -> function
            status = self.call(http, "room", "GET", f"{self.api}/v1/room/{room_id}/status", headers=headers)
            if status is None or status.status_code != 200:
                break
            if status.json()["data"]["participantCount"] == len(tokens):
                break
            time.sleep(0.3)
        else:
            with self.tally.lock:
                self.tally.uncounted_joins += 1
        self.call(http, "room", "DELETE", f"{self.api}/v1/room/{room_id}", headers=headers)

    def join(self, path: str, token: str) -> None:
        """A browser joining the stand-in's room with its join token (LiveKit accepts no other bearer
        for it). A refusal is the soak's own failure, not an answer: it is counted as failed."""
        request = urllib.request.Request(  # noqa: S310 - the local stand-in
            self.livekit + path,
            method="POST",
            data=json.dumps({"token": token}).encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:  # noqa: S310
                self.tally.record("livekit", reply.status)
        except urllib.error.HTTPError as exc:
            self.tally.record("livekit", None, f"{exc.code} {exc.read().decode(errors='replace')}")
        except OSError as exc:
            self.tally.record("livekit", None, repr(exc))

    def slot(self, http: httpx.Client, i: int, upload_every: int, room_every: int) -> None:
        if upload_every and i % upload_every == upload_every - 1:
            self.upload(http)
        elif room_every and i % room_every == room_every // 2:
            self.room(http)
        else:
            self.read(http, i)


def _person(prefix: str, role: str) -> dict[str, str]:
    uid = f"{prefix}-{uuid.uuid4().hex[:6]}"
    return {"uid": uid, "name": f"Soak {role.title()}", "role": role}


def _clip() -> bytes:
    from media_support import make_video

    with tempfile.TemporaryDirectory(prefix="verriflo-soak-") as tmp:
        return make_video(Path(tmp) / "soak.mp4", width=160, height=90, seconds=1, rate=10).read_bytes()


def _raise_rate_limit(env: dict[str, str]) -> None:
    """The soak is one org at ~50 requests/s; its default budget is 600 per minute and group."""
    cli = Path(sys.executable).with_name("verriflo")
    stores = {k: env[k] for k in ("MONGODB_URI", "REDIS_URL", "AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION")}
    proc = subprocess.run(  # noqa: S603 - fixed command
        [str(cli), "--json", "org", "set-rate-limit", env["DEMO_ORG_ID"], "default", "1000000"],
        env={k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MONGODB_", "REDIS_"))}
        | stores
        | {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"verriflo org set-rate-limit failed: {proc.stderr[-2000:]}")


def run(soak: Soak, requests: int, workers: int, deadline: float, args, on_tick) -> None:
    """Slots from `workers` threads until `requests` more requests were sent, or the deadline."""
    slots = itertools.count()
    target = soak.tally.sent + requests

    def worker() -> None:
        with httpx.Client(timeout=60, trust_env=False) as http:
            while True:
                with soak.tally.lock:
                    if soak.tally.sent >= target or time.monotonic() > deadline:
                        return
                    i = next(slots)
                soak.slot(http, i, args.upload_every, args.room_every)
                on_tick()

    threads = [threading.Thread(target=worker, name=f"soak-{n}") for n in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _flat(label: str, start: ProcFigures, end: ProcFigures, judged: bool, note: str = "") -> list[Result]:
    """Maps, RSS and threads, end against start; `judged`: maps within +5% (and 10) and threads within +10."""
    return [
        Result(
            f"{label}: memory maps",
            end.maps,
            "",
            baseline=start.maps,
            target="<= start +5% +10" if judged else "",
            ok=end.maps <= start.maps * 1.05 + 10 if judged else None,
            note=note,
        ),
        Result(f"{label}: RSS", end.rss_kb / 1024, "MB", baseline=start.rss_kb / 1024),
        Result(
            f"{label}: threads",
            end.threads,
            "",
            baseline=start.threads,
            target="<= start +10" if judged else "",
            ok=end.threads <= start.threads + 10 if judged else None,
        ),
    ]


def _process_results(name: str, start: ProcFigures, end: ProcFigures | None) -> list[Result]:
    """End figures against the start ones; flat for a server, informative for the Lambda processes
    (environments start and stop) and for LocalStack, whose pools grow with the functions'
    environments until the load is steady: it is judged over the second half (_steady_state)."""
    if end is None:
        return [Result(f"{name}: gone at the end", 0, "", ok=False)]
    note = {
        "lambda processes": f"{start.processes} -> {end.processes} processes",
        "localstack": "judged over the second half below",
    }.get(name, "")
    return _flat(name, start, end, name not in ("lambda processes", "localstack"), note)


@dataclass(frozen=True)
class Half:
    """Where the second half of the requests starts: the count sent, LocalStack's figures, the S3
    bytes and Step Functions executions it keeps."""

    sent: int
    figures: ProcFigures
    s3_bytes: int
    executions: Executions


def _steady_state(half: Half, sent: int, end: ProcFigures, s3_end: int, sfn_end: Executions) -> list[Result]:
    """LocalStack over the second half of the requests, once the functions' environments (one per
    worker and function at most) and LocalStack's pools have grown to the load: flat maps and threads,
    and RSS growth per request against the data it was asked to keep meanwhile (S3 objects in memory,
    Step Functions histories)."""
    requests = max(sent - half.sent, 1)
    grown = (end.rss_kb - half.figures.rss_kb) * 1024 / requests
    s3_kept = (s3_end - half.s3_bytes) / requests
    sfn_kept = (sfn_end.held_bytes - half.executions.held_bytes) / requests
    kept = s3_kept + sfn_kept
    maps, _, threads = _flat(
        "localstack, second half", half.figures, end, True, note=f"from request {half.sent}"
    )
    return [
        maps,
        threads,
        Result(
            "localstack, second half: RSS growth per request",
            grown / 1024,
            "kB",
            baseline=kept / 1024,
            note=f"baseline: data kept per request in the same span, S3 {s3_kept / 1024:.2f} kB + "
            f"Step Functions histories {sfn_kept / 1024:.2f} kB",
        ),
        Result(
            "localstack, second half: RSS growth not explained by the data kept, per request",
            max(grown - kept, 0) / 1024,
            "kB",
        ),
    ]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=int(os.environ.get("SOAK_REQUESTS", "30000")))
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--upload-every", type=int, default=200, help="one upload per N slots (0: none)")
    parser.add_argument(
        "--room-every", type=int, default=100, help="one room lifecycle per N slots (0: none)"
    )
    parser.add_argument("--max-minutes", type=float, default=150)
    parser.add_argument("--stack", default=f"soak-{os.getpid()}")
    args = parser.parse_args(argv)

    report = Report(f"soak: {args.requests} requests through the API on LocalStack")
    print(f"bringing up stack {args.stack} ...", flush=True)
    started = time.monotonic()
    with deployed(args.stack) as env:
        print(f"stack up in {time.monotonic() - started:.0f}s", flush=True)
        _raise_rate_limit(env)
        tally = Tally()
        soak = Soak(env, _clip(), tally)
        deadline = time.monotonic() + args.max_minutes * 60

        run(soak, WARMUP_REQUESTS, args.workers, deadline, args, lambda: None)
        warm_sent = tally.sent
        warm_failed = sum(tally.failed.values())
        tally.sent = 0
        tally.answered.clear()
        tally.failed.clear()
        start = stack_figures(args.stack)
        logs_start = stored_log_bytes(env)
        s3_start = s3_bytes_in_memory(env)
        sfn_start = step_functions_kept(env)
        half: Half | None = None  # the second half's start, once reached
        ticks: list[tuple[int, float, ProcFigures]] = []
        step = max(args.requests // 10, 1)
        lock = threading.Lock()

        def on_tick() -> None:
            nonlocal half
            with lock:
                if tally.sent >= (len(ticks) + 1) * step and len(ticks) < 10:
                    ls = stack_figures(args.stack).get("localstack")
                    if ls:
                        ticks.append((tally.sent, time.monotonic() - begun, ls))
                        if len(ticks) == 5:
                            half = Half(tally.sent, ls, s3_bytes_in_memory(env), step_functions_kept(env))
                        print(
                            f"  {tally.sent:>6} requests {ticks[-1][1]:>6.0f}s  localstack maps {ls.maps} "
                            f"threads {ls.threads} rss {ls.rss_kb // 1024} MB",
                            flush=True,
                        )

        begun = time.monotonic()
        run(soak, args.requests, args.workers, deadline, args, on_tick)
        elapsed = time.monotonic() - begun
        time.sleep(5)  # let the last webhooks and transcodes finish before the end figures
        end = stack_figures(args.stack)
        logs_end = stored_log_bytes(env)
        s3_end = s3_bytes_in_memory(env)
        sfn_end = step_functions_kept(env)
        livekit_log = (ROOT / ".local" / args.stack / "logs" / "livekit.log").read_text(errors="replace")
        hook_failures = livekit_log.count("webhook delivery failed")

    answered, failed = sum(tally.answered.values()), sum(tally.failed.values())
    report.add(
        Result(
            "requests sent (after warm-up)",
            tally.sent,
            "",
            note=f"warm-up {warm_sent} ({warm_failed} failed)",
        ),
        Result("requests answered (status < 500)", answered, "", target="all", ok=failed == 0),
        Result("requests failed (5xx or no answer)", failed, "", target="0", ok=failed == 0),
        Result(
            "requests per second", tally.sent / elapsed, "/s", note=f"{args.workers} workers, {elapsed:.0f}s"
        ),
        Result(
            "webhook deliveries retried (stand-in log)",
            hook_failures,
            "",
            note="the function answers 503 to an event for a room it has not stored yet",
        ),
        Result(
            "rooms whose joins were never counted",
            tally.uncounted_joins,
            "",
            target="0",
            ok=tally.uncounted_joins == 0,
        ),
    )
    for name in start:
        report.add(*_process_results(name, start[name], end.get(name)))
    report.add(
        Result(
            "localstack: CloudWatch Logs stored",
            logs_end / 2**20,
            "MB",
            baseline=logs_start / 2**20,
            note="the functions' logs, kept in LocalStack's memory as AWS keeps them",
        ),
        Result(
            "localstack: S3 objects held in memory",
            s3_end / 2**20,
            "MB",
            baseline=s3_start / 2**20,
            note="objects under 512 KiB (sources, HLS), kept in LocalStack's memory as S3 keeps them",
        ),
        Result(
            "localstack: Step Functions executions kept",
            sfn_end.count,
            "",
            baseline=sfn_start.count,
            note=f"histories {sfn_end.json_bytes / 2**20:.1f} MB as JSON, "
            f"{sfn_end.held_bytes / 2**20:.1f} MB as Python objects; in memory, as AWS keeps them 90 days",
        ),
    )
    if half is not None and end.get("localstack"):
        report.add(*_steady_state(half, tally.sent, end["localstack"], s3_end, sfn_end))
    report.print()
    print("\nLocalStack every tenth of the way (requests, seconds, maps, threads, RSS MB):")
    for sent, at, ls in ticks:
        print(f"  {sent:>6} {at:>7.0f}s {ls.maps:>7} {ls.threads:>5} {ls.rss_kb // 1024:>6}")
    print(f"answered by kind: {dict(tally.answered)}; failed by kind: {dict(tally.failed)}")
    for line in tally.failures:
        print(f"  failure: {line}")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
