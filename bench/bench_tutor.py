"""AI tutor benchmarks, each beside a baseline measured in the same run.

1. SSE time to first event: the tutor's ASGI app under a real uvicorn on loopback (as behind the
   Lambda Web Adapter), read with httpx, against the provider's own time to its first token (a
   provider that answers after a fixed delay). The difference is everything the tutor adds before the
   first token can leave: auth, rate limit, room and student checks, credits, the class context
   (question embedding, material search, earlier exchanges), framing, the server. Target <= 20 ms p50.
2. Class summary time (the ClassSummary steps gather + summarize, extractive) for classes of 50, 500
   and 5000 interactions, beside the bare read of the same interactions from MongoDB.

Run: .venv/bin/python bench/bench_tutor.py [--sizes 50,500,5000]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid

# As the template sets for the AI functions: one BLAS thread (read by numpy when first imported).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from support import ROOT, Report, Result, first_chunk_overhead, local_stores  # noqa: E402

for extra in (ROOT / "layers" / "ai", ROOT / "functions" / "ai_tutor"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))

FIRST_TOKEN_S = 0.05
STREAM_RUNS = 40
NOTES = """# Newton's second law
The net force acting on a body equals its mass multiplied by its acceleration, written F = m a.

# Inertia
Inertia is the tendency of a body to keep its state of rest or of uniform motion unless a force acts.
"""
TOPICS = [
    "Newton's second law",
    "inertia",
    "friction",
    "momentum",
    "kinetic energy",
    "gravity",
    "velocity",
    "acceleration",
    "work and power",
    "pressure",
    "density",
    "buoyancy",
    "waves",
    "sound",
    "light",
    "reflection",
    "refraction",
    "electric current",
    "voltage",
    "resistance",
    "magnetism",
    "heat",
    "temperature",
    "atoms",
    "molecules",
    "chemical reactions",
    "acids",
    "photosynthesis",
    "cells",
    "DNA",
]
FORMS = [
    "What is {}?",
    "Can you explain {}?",
    "How does {} work?",
    "Why is {} important?",
    "Give me an example of {}.",
    "I don't understand {}.",
    "What is the formula for {}?",
]


def _class(room_id: str, students: int = 40) -> tuple[str, dict[str, str]]:
    """An org with credits and a live room whose students are connected (as the rooms function records)."""
    from verriflo import db, ledger, orgs
    from verriflo.orgs import now

    org = orgs.create_org("Bench School")
    ledger.grant(
        ledger.UsageEvent(
            entry_id=f"grant-{uuid.uuid4().hex}", org_id=org.id, service="grant", credits=1_000_000
        )
    )
    db.collection("rooms").insert_one(
        {
            "orgId": org.id,
            "roomId": room_id,
            "title": "Physics 101",
            "status": "open",
            "lkName": f"{org.id}.{room_id}",
            "sid": "RM_bench",
            "createdAt": now(),
        }
    )
    db.collection("room_sessions").insert_many(
        [
            {
                "_id": f"{org.id}:{room_id}:PA_{i}",
                "orgId": org.id,
                "roomId": room_id,
                "uid": f"s-{i}",
                "role": "STUDENT",
                "joinedAt": now(),
                "leftAt": None,
            }
            for i in range(students)
        ]
    )
    return org.id, {"VF-ORG-ID": orgs.issue_key(org.id, "bench").secret}


def first_event(report: Report) -> None:
    from ai_tutor import answering, manage, streaming
    from ai_tutor.models import TutorAddMaterial

    org_id, headers = _class("bench-room")
    manage.add_material(
        org_id, "bench-room", TutorAddMaterial(title="Notes", content_type="text/markdown", content=NOTES)
    )
    first_chunk_overhead(
        report,
        app=streaming.app,
        logic_module=answering,
        path="/v1/ai-tutor/chat/stream",
        headers=headers,
        body_for=lambda i: {
            "roomId": "bench-room",
            "studentUid": f"s-{i % 40}",
            "text": FORMS[i % len(FORMS)].format(TOPICS[i % len(TOPICS)]),
        },
        label="SSE time to first event p50 (client, uvicorn)",
        runs=STREAM_RUNS,
        first_token_s=FIRST_TOKEN_S,
    )


def summaries(report: Report, sizes: list[int]) -> None:
    import random

    from ai_tutor import steps
    from bson import Binary
    from verriflo import db
    from verriflo.orgs import now
    from verriflo_ai.embeddings import embedder

    rng = random.Random(7)
    for size in sizes:
        room_id = f"class-{size}"
        org_id, _ = _class(room_id)
        questions = [rng.choice(FORMS).format(rng.choice(TOPICS)) for _ in range(size)]
        vectors = embedder().embed(questions)
        db.collection("tutor_interactions").insert_many(
            [
                {
                    "_id": f"ti_{size}_{i}",
                    "orgId": org_id,
                    "roomId": room_id,
                    "studentUid": f"s-{i % 40}",
                    "question": q,
                    "answer": f"An answer about {q.lower()} from the class material.",
                    "status": "completed",
                    "mode": "explain",
                    "inputTokens": 20,
                    "outputTokens": 40,
                    "vector": Binary(vectors[i].tobytes()),
                    "createdAt": now(),
                }
                for i, q in enumerate(questions)
            ]
        )
        db.collection("rooms").update_one({"orgId": org_id, "roomId": room_id}, {"$set": {"status": "ended"}})

        start = time.perf_counter()
        rows = list(
            db.collection("tutor_interactions")
            .find(
                {"orgId": org_id, "roomId": room_id, "status": "completed"},
                {"question": 1, "answer": 1, "studentUid": 1, "createdAt": 1, "vector": 1},
            )
            .sort("createdAt", 1)
        )
        bare = (time.perf_counter() - start) * 1000
        assert len(rows) == size

        start = time.perf_counter()
        state = steps.gather({"orgId": org_id, "roomId": room_id, "runId": "bench"})
        done = steps.summarize(state)
        ours = (time.perf_counter() - start) * 1000
        assert done["stored"] and done["interactions"] == size
        record = db.collection("tutor_summaries").find_one({"roomId": room_id})
        groups = sum(q["frequency"] for q in record["topQueries"])
        report.add(
            Result(
                f"class summary, {size} interactions (gather + summarize)",
                ours,
                "ms",
                baseline=bare,
                note=f"baseline: bare read of the interactions; top {len(record['topQueries'])} "
                f"groups hold {groups} questions",
            )
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="50,500,5000")
    args = parser.parse_args()
    os.environ.update(
        AWS_DEFAULT_REGION="us-east-1",
        POWERTOOLS_LOG_LEVEL="WARNING",
        POWERTOOLS_TRACE_DISABLED="true",
        POWERTOOLS_METRICS_NAMESPACE="Bench",
    )
    with local_stores():
        report = Report("AI tutor")
        first_event(report)
        summaries(report, [int(s) for s in args.sizes.split(",")])
        report.print()


if __name__ == "__main__":
    main()
