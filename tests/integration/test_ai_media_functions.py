"""The offline media capabilities as functions of their own (functions/ai_media), invoked through
Lambda's Invoke API (botocore against a local endpoint that runs the handlers in another process, with
the local providers): what a deployed AI API does with AI_*_PROVIDER=lambda. Speech, OCR and charts
are real (espeak-ng speaks, faster-whisper listens, RapidOCR reads, matplotlib draws)."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from ai_agent import answering, handler
from ai_media import handler as media_handler
from ai_support import (
    ScriptedProvider,
    ai_env,  # noqa: F401 - an autouse fixture
    b64,
    grant,
    lines,
    png_with_text,
    spoken_wav,
)
from support import api_event, call
from verriflo.errors import ValidationFailed
from verriflo_ai import knowledge, remote_media, speech
from verriflo_ai import settings as ai_settings_module

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def invoke_endpoint() -> Iterator[str]:
    """The Invoke API stand-in, one process for the module (it loads whisper and OCR once)."""
    paths = [ROOT / p for p in ("layers/common", "layers/ai", "functions/ai_media")]
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join(map(str, paths)),
        "POWERTOOLS_SERVICE_NAME": "ai-media-test",
    }
    proc = subprocess.Popen(  # noqa: S603 - our own script
        [sys.executable, str(ROOT / "tests/ai_media_lambda.py")], stdout=subprocess.PIPE, env=env
    )
    try:
        port = proc.stdout.readline().decode().strip()
        assert port.isdigit(), "the Invoke stand-in did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture
def media_functions(invoke_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The AI API configured as deployed: speech, vision and charts in their own functions."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL_LAMBDA": invoke_endpoint,
        "AI_SPEECH_PROVIDER": "lambda",
        "AI_VISION_PROVIDER": "lambda",
        "AI_CHART_PROVIDER": "lambda",
        "AI_SPEECH_FUNCTION": "stack-ai-media-speech",
        "AI_VISION_FUNCTION": "stack-ai-media-vision",
        "AI_CHART_FUNCTION": "stack-ai-media-charts",
    }.items():
        monkeypatch.setenv(name, value)
    ai_settings_module.reset_settings()
    remote_media.reset_client()
    # Nothing is heard or read in this process: it all happens behind the Invoke API.
    monkeypatch.setattr(speech, "_whisper", lambda: pytest.fail("whisper ran in the caller"))
    yield
    remote_media.reset_client()


NOTES = "Photosynthesis happens in the chloroplasts and turns sunlight into sugar."


def ask(org, ctx, body, name="ai_agent/chat.json"):
    return call(handler.handler, api_event(name, headers=org.headers, body=body), ctx)


def test_a_spoken_question_is_transcribed_by_the_speech_function(org, lambda_context, media_functions):
    grant(org.id)
    kb = knowledge.create_base(org.id, "Bio").knowledge_base_id
    knowledge.add_document(org.id, kb, "Notes", NOTES.encode(), "text/plain")
    wav = spoken_wav("Tell me about sunlight and plants.")
    reply = ask(org, lambda_context, {"audio": b64(wav), "knowledgeBaseIds": [kb]})
    assert reply.status == 200, reply.body
    assert "sunlight and plants" in reply.data["transcript"].lower()
    assert "chloroplasts" in reply.data["text"]


def test_an_image_is_read_by_the_vision_function(org, lambda_context, media_functions):
    grant(org.id)
    kb = knowledge.create_base(org.id, "Bio").knowledge_base_id
    knowledge.add_document(org.id, kb, "Notes", NOTES.encode(), "text/plain")
    png = png_with_text("Where does photosynthesis happen?")
    reply = ask(
        org, lambda_context, {"image": b64(png), "imageMimeType": "image/png", "knowledgeBaseIds": [kb]}
    )
    assert reply.status == 200, reply.body
    assert "chloroplasts" in reply.data["text"]


def test_a_chart_is_drawn_by_the_charts_function(org, lambda_context, media_functions, monkeypatch):
    from PIL import Image

    grant(org.id)
    model = ScriptedProvider(pieces=["Averages:\n", "- Maths: 81\n", "- Science: 74\n"])
    monkeypatch.setattr(answering, "provider", lambda: model)
    events = lines(
        ask(
            org, lambda_context, {"message": "Plot a chart of the averages"}, "ai_agent/chat_stream.json"
        ).body
    )
    pictures = [e for e in events if e["type"] == "image"]
    assert len(pictures) == 1
    assert Image.open(io.BytesIO(base64.b64decode(pictures[0]["image"]))).format == "PNG"


def test_the_functions_refusal_reaches_the_client_as_the_same_error(org, lambda_context, media_functions):
    grant(org.id)
    # A WAV header over bytes that are not audio: the speech function cannot decode it (400).
    reply = ask(org, lambda_context, {"audio": b64(b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 64)})
    assert reply.status == 400 and "cannot be decoded" in reply.body["message"]


def test_the_callers_length_limit_is_applied_by_the_speech_function(
    org, lambda_context, media_functions, monkeypatch
):
    grant(org.id)
    # The caller's limit travels with the audio; the function (another process) applies it.
    monkeypatch.setenv("AI_MAX_AUDIO_SECONDS", "1")
    ai_settings_module.reset_settings()
    reply = ask(org, lambda_context, {"audio": b64(spoken_wav("This sentence lasts longer than a second."))})
    assert reply.status == 400 and "limited to 1 seconds" in reply.body["message"]
    refused = media_handler.transcribe({"audio": b64(spoken_wav("Hello.")), "maxSeconds": "long"})
    assert refused["error"]["status"] == 400
    with pytest.raises(ValidationFailed, match="maxSeconds"):
        remote_media.decode_reply(json.dumps(refused).encode(), None, "Speech recognition")


def test_a_crashed_or_missing_function_is_502_or_503_and_never_a_made_up_answer(
    org, lambda_context, media_functions, monkeypatch
):
    grant(org.id)
    wav = b64(spoken_wav("Hello there."))
    monkeypatch.setenv("AI_SPEECH_FUNCTION", "stack-ai-media-crash")
    ai_settings_module.reset_settings()
    assert ask(org, lambda_context, {"audio": wav}).status == 502
    monkeypatch.setenv("AI_SPEECH_FUNCTION", "stack-ai-media-nothing")
    ai_settings_module.reset_settings()
    assert ask(org, lambda_context, {"audio": wav}).status == 503
    monkeypatch.delenv("AI_SPEECH_FUNCTION")
    ai_settings_module.reset_settings()
    missing = ask(org, lambda_context, {"audio": wav})
    assert missing.status == 503 and "not configured" in missing.body["message"]
