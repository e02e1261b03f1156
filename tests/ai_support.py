"""Helpers for the AI tests: credits, NDJSON, test media made on the spot, and providers that
misbehave on purpose (slow, failing mid-stream) to exercise the real streaming and error paths."""

from __future__ import annotations

import base64
import io
import json
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from verriflo_ai.providers import GenerationRequest, ProviderError, TextDelta, Usage


@pytest.fixture(autouse=True)
def ai_env() -> Iterator[None]:
    """Fresh AI settings and no cached knowledge-base indexes (each test has its own database)."""
    from verriflo_ai import knowledge
    from verriflo_ai import settings as ai_settings_module

    ai_settings_module.reset_settings()
    knowledge.clear_index_cache()
    yield
    ai_settings_module.reset_settings()
    knowledge.clear_index_cache()


def usage_period() -> dict[str, str]:
    """A usage-summary query around the current day (from yesterday to tomorrow): whatever the
    calendar says when the test runs, and if midnight passes between a write and the read, what the
    test just recorded is inside it. (The sample event's fixed dates are an example for
    `sam local invoke`, not a period that contains today.)"""
    today = datetime.now(UTC).date()
    return {
        "startDate": (today - timedelta(days=1)).isoformat(),
        "endDate": (today + timedelta(days=1)).isoformat(),
    }


def grant(org_id: str, credits: int = 1000) -> None:
    """Give the org credits so AI requests may run."""
    from verriflo import ledger

    ledger.grant(
        ledger.UsageEvent(
            entry_id=f"grant-{uuid.uuid4().hex}", org_id=org_id, service="grant", credits=credits
        )
    )


def lines(body: str | bytes) -> list[dict[str, Any]]:
    """NDJSON body to objects (every line must be one JSON object)."""
    text = body.decode() if isinstance(body, bytes) else body
    assert text.endswith("\n"), "an NDJSON body ends with a newline"
    return [json.loads(line) for line in text.splitlines()]


def spoken_wav(text: str, voice: str = "en-us") -> bytes:
    """Speech made by espeak-ng (slowed a little so whisper hears it clearly)."""
    return subprocess.run(
        ["espeak-ng", "-v", voice, "-s", "140", "--stdout"],
        input=text.encode(),
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout


def to_webm(wav: bytes) -> bytes:
    """WAV to WebM/Opus with ffmpeg (what browsers record)."""
    return subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-i", "pipe:0", "-c:a", "libopus", "-f", "webm", "pipe:1"],
        input=wav,
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout


def png_with_text(text: str) -> bytes:
    """A PNG showing `text` in large print."""
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (40 + 22 * len(text), 120), "white")
    ImageDraw.Draw(image).text((20, 35), text, fill="black", font=ImageFont.load_default(size=40))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def long_opus(minutes: int, container: str = "ogg") -> bytes:
    """`minutes` of 6 kbps Opus: one minute encoded by ffmpeg, then looped by stream copy (fast).

    Ogg declares its length (the last page's granule position); WebM written to a pipe declares
    none, as a browser's MediaRecorder does."""
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        one = Path(tmp) / "one.ogg"
        subprocess.run(
            [
                "ffmpeg",
                "-loglevel",
                "error",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=300:sample_rate=16000:duration=60",
                "-ac",
                "1",
                "-c:a",
                "libopus",
                "-b:a",
                "6k",
                "-application",
                "voip",
                str(one),
            ],
            check=True,
            timeout=60,
        )
        return subprocess.run(
            [
                "ffmpeg",
                "-loglevel",
                "error",
                "-stream_loop",
                str(minutes - 1),
                "-i",
                str(one),
                "-c",
                "copy",
                "-f",
                container,
                "pipe:1",
            ],
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout


def png_bomb(side: int = 30_000) -> bytes:
    """A valid 1-bit PNG of side x side white pixels: a few hundred KB that decode to side² pixels
    (30000² as RGB is 2.7 GB)."""
    import struct
    import zlib

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    packer = zlib.compressobj(9)
    row = b"\x00" + b"\xff" * ((side + 7) // 8)  # filter byte, then the row's bits
    idat = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)  # 1-bit greyscale
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def pdf_with_text(paragraphs: list[str]) -> bytes:
    """A minimal valid PDF (one page, Helvetica) whose text pypdf can extract."""
    return pdf_pages([[(11, p) for p in paragraphs]])


def pdf_pages(pages: list[list[tuple[int, str]]]) -> bytes:
    """A minimal valid PDF of several pages (Helvetica) whose text pypdf can extract: each page a list
    of (font size, line) drawn top down, one line each (headings larger, body text wrapped as a PDF
    wraps it: mid-sentence)."""
    page_ids = [3 + 2 * i for i in range(len(pages))]
    font_id = 3 + 2 * len(pages)
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [" + b" ".join(f"{i} 0 R".encode() for i in page_ids) + b"]"
        + f" /Count {len(pages)} >>".encode(),
    ]  # fmt: skip
    for page_id, lines in zip(page_ids, pages, strict=True):
        ops = ["BT", "50 780 Td"]
        for size, line in lines:
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops += [f"/F1 {size} Tf", f"{round(size * 1.3)} TL", f"({escaped}) Tj", "T*"]
        ops.append("ET")
        stream = "\n".join(ops).encode()
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 842] /Contents {page_id + 1} 0 R ".encode()
            + f"/Resources << /Font << /F1 {font_id} 0 R >> >> >>".encode()
        )
        objects.append(
            b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n" + stream + b"\nendstream"
        )
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


# A handout of three topics, one a page, each under a heading, its text wrapped mid-sentence as PDFs
# wrap it: (heading, text, a question only that page answers).
PDF_TOPICS = [
    (
        "Photosynthesis",
        "Plants make their own food by photosynthesis. In the chloroplasts, chlorophyll absorbs sunlight. "
        "The plant turns carbon dioxide and water into glucose and releases oxygen into the air. Without "
        "light, photosynthesis stops, which is why plants kept in the dark turn yellow.",
        "How do plants make glucose from sunlight?",
    ),
    (
        "The Battle of Hastings",
        "The Battle of Hastings was fought on 14 October 1066 between the Norman army of William, Duke of "
        "Normandy, and the English army of King Harold. Harold was killed during the battle. William the "
        "Conqueror was crowned King of England on Christmas Day.",
        "Who was crowned king after the battle in 1066?",
    ),
    (
        "The theorem of Pythagoras",
        "In a right-angled triangle, the square of the hypotenuse equals the sum of the squares of the "
        "other two sides. For sides of 3 and 4 the hypotenuse is 5. The theorem is named after the Greek "
        "mathematician Pythagoras.",
        "How long is the hypotenuse of a triangle with sides 3 and 4?",
    ),
]


def topics_pdf() -> bytes:
    """`PDF_TOPICS` as a three-page PDF: a larger heading on each page, body lines of 60 characters."""
    import textwrap

    return pdf_pages(
        [[(18, head)] + [(11, line) for line in textwrap.wrap(text, 60)] for head, text, _ in PDF_TOPICS]
    )


def b64(data: bytes) -> str:
    """Base64 text of bytes."""
    return base64.b64encode(data).decode()


@dataclass
class ScriptedProvider:
    """A provider that yields given pieces with a delay, and may fail after some of them.

    It stands in for a remote model so tests control timing and failure; it goes through exactly
    the code paths a real provider does (the OpenAI-compatible and Bedrock providers have their own
    tests against wire-level stand-ins). With `paced`, every piece after the first waits until the
    test calls `release()` (e.g. when the previous piece reached the client), so a streaming test
    depends on the order of events, never on how fast a loaded machine runs; a piece nobody
    releases within `pace_timeout_s` fails the answer.
    """

    pieces: list[str]
    delay_s: float = 0.0
    fail_after: int | None = None
    name: str = "scripted"
    paced: bool = False
    pace_timeout_s: float = 30.0
    calls: list[GenerationRequest] = field(default_factory=list)
    first_token_at: float | None = None
    finished_at: float | None = None
    produced_at: list[float] = field(default_factory=list)
    _pace: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0), repr=False)

    def release(self) -> None:
        """Let a paced provider produce its next piece."""
        self._pace.release()

    def stream(self, request: GenerationRequest) -> Iterator[TextDelta | Usage]:
        self.calls.append(request)
        for i, piece in enumerate(self.pieces):
            if self.fail_after is not None and i >= self.fail_after:
                raise ProviderError("The model provider failed mid-stream.")
            if self.delay_s:
                time.sleep(self.delay_s)
            if self.paced and i and not self._pace.acquire(timeout=self.pace_timeout_s):
                raise ProviderError(f"Piece {i} was never released: the previous one did not arrive.")
            if self.first_token_at is None:
                self.first_token_at = time.perf_counter()
            self.produced_at.append(time.perf_counter())
            yield TextDelta(piece)
        self.finished_at = time.perf_counter()
        yield Usage(input_tokens=11, output_tokens=len(self.pieces), model=self.name)


def chat_route(org: Any, ctx: Any, action: str, chat_id: str) -> Any:
    """`read` (GET) or `delete` (DELETE) /v1/ai-agent/chats/{chat_id} through the AI function's handler."""
    from ai_agent import handler
    from support import api_event, call

    event = api_event(
        f"ai_agent/{action}_chat.json",
        headers=org.headers,
        path=f"/v1/ai-agent/chats/{chat_id}",
        path_params={"chat_id": chat_id},
    )
    return call(handler.handler, event, ctx)


@pytest.fixture
def ingest_queue(monkeypatch: pytest.MonkeyPatch) -> str:
    """The ingestion queue and document bucket (moto), with a small inline limit so a document of a
    few dozen passages already goes through the queue. Returns the queue URL."""
    import boto3
    from verriflo_ai import settings as ai_settings_module

    boto3.client("s3").create_bucket(Bucket="verriflo-test-uploads")
    queue = boto3.client("sqs").create_queue(QueueName="verriflo-test-ingest")["QueueUrl"]
    for name, value in {
        "AI_DOCUMENT_BUCKET": "verriflo-test-uploads",
        "AI_INGEST_QUEUE_URL": queue,
        "AI_INLINE_DOCUMENT_CHUNKS": "4",
        "AI_INGEST_BATCH_CHUNKS": "8",
    }.items():
        monkeypatch.setenv(name, value)
    ai_settings_module.reset_settings()
    return queue


@dataclass
class Delivery:
    """One SQS message as the queue hands it to the worker, and how often it has been received."""

    message_id: str
    body: str
    receives: int = 1

    def event(self) -> dict[str, Any]:
        """The Lambda event of an SQS event source mapping with this one record."""
        return {
            "Records": [
                {
                    "messageId": self.message_id,
                    "receiptHandle": f"rh-{self.message_id}-{self.receives}",
                    "body": self.body,
                    "attributes": {
                        "ApproximateReceiveCount": str(self.receives),
                        "SentTimestamp": "0",
                        "SenderId": "test",
                        "ApproximateFirstReceiveTimestamp": "0",
                    },
                    "messageAttributes": {},
                    "md5OfBody": "",
                    "eventSource": "aws:sqs",
                    "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:verriflo-test-ingest",
                    "awsRegion": "us-east-1",
                }
            ]
        }


def queued(queue_url: str | None = None) -> list[Delivery]:
    """Take every message off the ingestion queue, or the one named (as the event source mapping would)."""
    import boto3
    from verriflo_ai.settings import ai_settings

    sqs, queue_url = boto3.client("sqs"), queue_url or ai_settings().ingest_queue_url
    taken: list[Delivery] = []
    while True:
        got = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        messages = got.get("Messages", [])
        if not messages:
            return taken
        for m in messages:
            taken.append(Delivery(m["MessageId"], m["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])


def work(delivery: Delivery, ctx: Any) -> bool:
    """Run the ingestion worker in-process on one delivery; True when it succeeded (no item failure)."""
    import os

    from ai_ingest import handler
    from verriflo_ai import settings as ai_settings_module

    # As deployed: the worker is given the bucket, not the queue (it never enqueues).
    queue = os.environ.pop("AI_INGEST_QUEUE_URL", None)
    ai_settings_module.reset_settings()
    try:
        answer = handler.handler(delivery.event(), ctx)
    finally:
        if queue is not None:
            os.environ["AI_INGEST_QUEUE_URL"] = queue
        ai_settings_module.reset_settings()
    return not answer["batchItemFailures"]
