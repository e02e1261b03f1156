"""AI API benchmarks, each beside a baseline measured in the same run.

1. Time to first streamed line: the ASGI app under a real uvicorn on loopback (as behind the Lambda
   Web Adapter), read with httpx, against the provider's own time to its first token (a provider that
   answers after a fixed delay). The difference is everything we add: auth, rate limit, credit check,
   history read, framing, the server. Target: overhead at most 20 ms at p50.
2. Retrieval latency (query embedding + version check + search) at 1k, 10k and 100k chunks, warm,
   beside the bare work (embed the query, one matrix-vector product, top-k). Target: p50 <= 20 ms at 10k.
   The cold load of each index from MongoDB is reported too.
3. Ingestion rate of Markdown documents (extract, chunk, embed, store) beside bare embedding of the
   same chunks.
4. Speech to text (faster-whisper tiny.en) as a multiple of realtime, beside bare model inference on
   the decoded samples.
5. The media functions' hop: transcribing a clip and reading an image through Lambda's Invoke API
   (botocore to a warm function process, tests/ai_media_lambda.py, as AI_*_PROVIDER=lambda does),
   beside the same work in-process. Lambda's own invoke overhead and cold starts are not in it.

Run: .venv/bin/python bench/bench_ai.py [--sizes 1000,10000,100000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid

# As the template sets for the AI functions: one BLAS thread (read by numpy when first imported).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from support import ROOT, Report, Result, first_chunk_overhead, local_stores, percentile, time_calls  # noqa: E402

for extra in (ROOT / "layers" / "ai", ROOT / "functions" / "ai_agent"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

FIRST_TOKEN_S = 0.05
STREAM_RUNS = 40


def _org() -> tuple[str, dict[str, str]]:
    from ai_support import grant
    from verriflo import orgs

    org = orgs.create_org("Bench School")
    grant(org.id, 1_000_000)
    return org.id, {"VF-ORG-ID": orgs.issue_key(org.id, "bench").secret}


def first_line(report: Report) -> None:
    from ai_agent import answering, streaming

    _org_id, headers = _org()
    first_chunk_overhead(
        report,
        app=streaming.app,
        logic_module=answering,
        path="/v1/ai-agent/chat/stream",
        headers=headers,
        body_for=lambda i: {"chatId": f"bench-{i % 5}", "message": "count to three"},
        label="time to first NDJSON line p50 (client, uvicorn)",
        runs=STREAM_RUNS,
        first_token_s=FIRST_TOKEN_S,
    )


def retrieval(report: Report, sizes: list[int]) -> None:
    import numpy as np
    from bson import Binary
    from verriflo import db
    from verriflo_ai import knowledge
    from verriflo_ai.embeddings import embedder

    org_id = f"org_bench_{uuid.uuid4().hex[:6]}"
    rng = np.random.default_rng(7)
    texts = [
        "The mitochondria is the powerhouse of the cell and makes ATP.",
        "Photosynthesis in chloroplasts turns light into sugar.",
        "The Battle of Hastings was fought in 1066.",
    ]
    real = embedder().embed(texts)
    query = "Which organelle produces energy for the cell?"
    for size in sizes:
        kb = knowledge.create_base(org_id, f"bench-{size}")
        # Random unit vectors stand in for the bulk (embedding 100k texts would take minutes); three
        # real passages are among them, so the search must find them among the noise.
        bulk = rng.standard_normal((size, 384)).astype(np.float32)
        bulk /= np.linalg.norm(bulk, axis=1, keepdims=True)
        bulk[: len(texts)] = real
        coll = db.collection("kb_chunks")
        for start in range(0, size, 5000):
            kb_id = kb.knowledge_base_id
            coll.insert_many(
                [
                    {
                        "_id": f"{kb_id}:{i}",
                        "orgId": org_id,
                        "kbId": kb_id,
                        "docId": "doc_bench",
                        "ordinal": i,
                        "text": texts[i] if i < len(texts) else f"noise {i}",
                        "title": "bench",
                        "vector": Binary(bulk[i].tobytes()),
                    }
                    for i in range(start, min(start + 5000, size))
                ],
                ordered=False,
            )
        db.collection("knowledge_bases").update_one({"_id": kb.knowledge_base_id}, {"$inc": {"version": 1}})
        load_start = time.perf_counter()
        found = knowledge.search(org_id, [kb.knowledge_base_id], query)
        load_ms = (time.perf_counter() - load_start) * 1000
        assert found and "mitochondria" in found[0].text, found

        def ours(kb_id=kb.knowledge_base_id) -> None:
            knowledge.search(org_id, [kb_id], query)

        def bare(matrix=bulk) -> None:
            vector = embedder().embed([query])[0]
            scores = matrix @ vector
            np.argpartition(-scores, 3)[:4]

        runs = 200 if size <= 10_000 else 60
        ours_samples, bare_samples = [], []
        for _ in range(2):
            ours_samples += time_calls(ours, runs // 2, warmup=5)
            bare_samples += time_calls(bare, runs // 2, warmup=5)
        p50 = percentile(ours_samples, 50)
        target = "<= 20 ms" if size == 10_000 else ""
        report.add(
            Result(
                f"retrieval p50 at {size:,} chunks (warm)",
                p50,
                "ms",
                baseline=percentile(bare_samples, 50),
                target=target,
                ok=(p50 <= 20) if size == 10_000 else None,
            )
        )
        report.add(
            Result(
                f"retrieval p95 at {size:,} chunks (warm)",
                percentile(ours_samples, 95),
                "ms",
                baseline=percentile(bare_samples, 95),
            )
        )
        report.add(Result(f"index load from MongoDB at {size:,} chunks (cold)", load_ms, "ms"))


def ingestion(report: Report) -> None:
    from verriflo_ai import knowledge
    from verriflo_ai.documents import chunk_text
    from verriflo_ai.embeddings import embedder
    from verriflo_ai.settings import ai_settings

    words = (
        "cells tissues organs energy light water carbon oxygen protein enzyme membrane nucleus "
        "gene evolution species habitat climate force motion"
    ).split()
    rng = __import__("random").Random(3)
    documents = []
    for _ in range(20):
        sections = [
            f"# Section {s}\n" + "\n\n".join(" ".join(rng.choice(words) for _ in range(80)) for _ in range(3))
            for s in range(4)
        ]
        documents.append("\n\n".join(sections))  # ~1,000 words each
    org_id = f"org_ingest_{uuid.uuid4().hex[:6]}"
    kb = knowledge.create_base(org_id, "ingest")
    knowledge.add_document(org_id, kb.knowledge_base_id, "warm-up", documents[0].encode(), "text/markdown")
    start = time.perf_counter()
    chunks = 0
    for i, text in enumerate(documents):
        chunks += knowledge.add_document(
            org_id, kb.knowledge_base_id, f"doc {i}", text.encode(), "text/markdown"
        ).chunk_count
    ours = time.perf_counter() - start
    settings = ai_settings()
    start = time.perf_counter()
    for text in documents:
        chunks_of_text = chunk_text(text, settings.chunk_words, settings.chunk_overlap_words)
        embedder().embed([c.text for c in chunks_of_text])
    bare = time.perf_counter() - start
    report.add(
        Result(
            "ingestion: documents per second (~1,000 words)",
            len(documents) / ours,
            "/s",
            baseline=len(documents) / bare,
            note="baseline: bare chunk+embed, no storage",
        )
    )
    report.add(Result("ingestion: chunks per second", chunks / ours, "/s", baseline=chunks / bare))


def speech_to_text(report: Report) -> None:
    import subprocess

    from verriflo_ai import speech

    text = (
        "Today we study the cell. The mitochondria is the powerhouse of the cell. It turns food and "
        "oxygen into energy that the cell can use. Plants also have chloroplasts."
    )
    wav = subprocess.run(
        ["espeak-ng", "-s", "140", "--stdout"], input=text.encode(), capture_output=True, check=True
    ).stdout
    speech.transcribe(wav)  # load the model
    samples = speech.decode_audio(wav)
    duration = len(samples) / 16000
    ours = [time_calls(lambda: speech.transcribe(wav), 1, warmup=0)[0] for _ in range(3)]

    def bare() -> None:
        segments, _ = speech._whisper().transcribe(samples, language="en", beam_size=1)
        list(segments)

    base = [time_calls(bare, 1, warmup=0)[0] for _ in range(3)]
    ours_x = duration / (sorted(ours)[1] / 1000)
    bare_x = duration / (sorted(base)[1] / 1000)
    report.add(
        Result(
            f"speech to text, {duration:.1f} s clip: x realtime",
            ours_x,
            "x",
            baseline=bare_x,
            target=">= 5x",
            ok=ours_x >= 5,
            note="baseline: bare whisper on decoded samples",
        )
    )


def media_hop(report: Report) -> None:
    import subprocess

    from ai_support import png_with_text, spoken_wav
    from verriflo_ai import images, speech
    from verriflo_ai import settings as ai_settings_module

    paths = [ROOT / p for p in ("layers/common", "layers/ai", "functions/ai_media")]
    env = os.environ | {"PYTHONPATH": os.pathsep.join(map(str, paths)), "POWERTOOLS_SERVICE_NAME": "bench"}
    proc = subprocess.Popen(  # noqa: S603 - our own script
        [sys.executable, str(ROOT / "tests" / "ai_media_lambda.py")], stdout=subprocess.PIPE, env=env
    )
    try:
        port = proc.stdout.readline().decode().strip()
        os.environ["AWS_ENDPOINT_URL_LAMBDA"] = f"http://127.0.0.1:{port}"
        os.environ.update(
            AI_SPEECH_FUNCTION="bench-ai-media-speech", AI_VISION_FUNCTION="bench-ai-media-vision"
        )
        wav = spoken_wav("The mitochondria is the powerhouse of the cell. Plants also have chloroplasts.")
        png = png_with_text("Where is ATP made?")
        work = {
            "speech": (lambda: speech.transcribe(wav), "AI_SPEECH_PROVIDER"),
            "image reading": (lambda: images.read_image(png, "image/png"), "AI_VISION_PROVIDER"),
        }
        for name, (call, setting) in work.items():
            # One side after the other: two whisper instances on two cores interleaved would slow each
            # other down (their worker threads keep spinning between calls), which no deployment sees.
            timings: dict[str, list[float]] = {}
            for provider in ("local", "lambda"):
                os.environ[setting] = provider
                ai_settings_module.reset_settings()
                timings[provider] = time_calls(call, 7, warmup=2)
            p50 = {k: percentile(v, 50) for k, v in timings.items()}
            report.add(
                Result(
                    f"{name} through the media function p50",
                    p50["lambda"],
                    "ms",
                    baseline=p50["local"],
                    note=f"hop {p50['lambda'] - p50['local']:+.1f} ms; baseline: in-process",
                )
            )
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument(
        "--parts",
        default="stream,retrieval,ingestion,speech,media",
        help="comma-separated subset of: stream, retrieval, ingestion, speech, media",
    )
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    os.environ.update(
        AWS_DEFAULT_REGION="us-east-1",
        POWERTOOLS_TRACE_DISABLED="true",
        POWERTOOLS_LOG_LEVEL="WARNING",
        RATE_LIMIT_DEFAULT="100000000",
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",  # noqa: S106 - moto-style dummy
    )
    report = Report(f"ai (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at start)")
    with local_stores():
        if "stream" in parts:
            first_line(report)
        if "retrieval" in parts:
            retrieval(report, [int(s) for s in args.sizes.split(",")])
        if "ingestion" in parts:
            ingestion(report)
    if "speech" in parts:
        speech_to_text(report)
    if "media" in parts:
        media_hop(report)
    report.print()


if __name__ == "__main__":
    main()
