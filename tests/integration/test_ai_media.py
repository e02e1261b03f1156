"""Voice and images, offline and real: espeak-ng speaks, faster-whisper (tiny.en) listens, RapidOCR
reads, matplotlib draws. Inputs are made in the test, so nothing is canned."""

from __future__ import annotations

import base64
import io

import pytest
from ai_agent import answering, handler
from ai_support import (
    ScriptedProvider,
    ai_env,  # noqa: F401 - an autouse fixture
    b64,
    grant,
    lines,
    long_opus,
    png_bomb,
    png_with_text,
    spoken_wav,
    to_webm,
)
from support import api_event, call
from verriflo_ai import knowledge, speech
from verriflo_ai import settings as ai_settings_module

NOTES = """# Cells
The mitochondria is the powerhouse of the cell: it makes ATP, the energy cells use.

# Plants
Photosynthesis happens in the chloroplasts and turns sunlight into sugar.
"""


def stream(org, ctx, body):
    return call(handler.handler, api_event("ai_agent/chat_stream.json", headers=org.headers, body=body), ctx)


def kb_with_notes(org) -> str:
    kb = knowledge.create_base(org.id, "Bio")
    knowledge.add_document(org.id, kb.knowledge_base_id, "Notes", NOTES.encode(), "text/markdown")
    return kb.knowledge_base_id


@pytest.mark.parametrize("container", ["wav", "mp3", "webm"])
def test_a_spoken_question_is_transcribed_and_answered_from_the_knowledge_base(
    org, lambda_context, container
):
    grant(org.id)
    kb = kb_with_notes(org)
    wav = spoken_wav("Tell me about sunlight and plants.")
    audio = {
        "wav": wav,
        "mp3": speech._espeak_mp3("Tell me about sunlight and plants.", "en-us"),
        "webm": to_webm(wav),
    }[container]
    reply = call(
        handler.handler,
        api_event(
            "ai_agent/chat.json", headers=org.headers, body={"audio": b64(audio), "knowledgeBaseIds": [kb]}
        ),
        lambda_context,
    )
    assert reply.status == 200, reply.body
    assert "sunlight and plants" in reply.data["transcript"].lower()
    assert reply.data["requestModality"] == "audio"
    assert "chloroplasts" in reply.data["text"]


def test_spoken_answers_stream_as_audio_lines_that_say_the_answer(org, lambda_context, monkeypatch):
    grant(org.id)
    model = ScriptedProvider(pieces=["Tell me about sunlight and plants. ", "Plants use ", "sunlight."])
    monkeypatch.setattr(answering, "provider", lambda: model)
    events = lines(
        stream(
            org, lambda_context, {"message": "hi", "responseModality": "text+audio", "voiceName": "en-gb"}
        ).body
    )
    kinds = [e["type"] for e in events]
    assert kinds.count("text") == 3 and kinds[-2:] == ["usage", "done"]
    audio = [e for e in events if e["type"] == "audio"]
    assert [a["index"] for a in audio] == [0, 1]
    # The first sentence is spoken as soon as it is complete, before the rest of the text arrives.
    assert kinds.index("audio") < len(kinds) - 1 - kinds[::-1].index("text")
    assert all(a["mimeType"] == "audio/mpeg" for a in audio)
    heard = speech.transcribe(base64.b64decode(audio[0]["audio"])).text.lower()
    assert "sunlight" in heard
    only_audio = lines(stream(org, lambda_context, {"message": "hi", "responseModality": "audio"}).body)
    assert "text" not in [e["type"] for e in only_audio] and "audio" in [e["type"] for e in only_audio]


def test_an_image_question_is_read_and_answered(org, lambda_context):
    grant(org.id)
    kb = kb_with_notes(org)
    png = png_with_text("Where is ATP made?")
    reply = call(
        handler.handler,
        api_event(
            "ai_agent/chat.json",
            headers=org.headers,
            body={"image": b64(png), "imageMimeType": "image/png", "knowledgeBaseIds": [kb]},
        ),
        lambda_context,
    )
    assert reply.status == 200, reply.body
    assert reply.data["requestModality"] == "image"
    assert "mitochondria" in reply.data["text"]


def test_an_image_sent_with_a_message_informs_both_the_search_and_the_prompt(
    org, lambda_context, monkeypatch
):
    grant(org.id)
    kb = kb_with_notes(org)
    asked = "Where does this happen?"
    png = png_with_text("Photosynthesis")
    body = {"message": asked, "image": b64(png), "imageMimeType": "image/png", "knowledgeBaseIds": [kb]}
    alone = call(
        handler.handler,
        api_event(
            "ai_agent/chat.json", headers=org.headers, body={"message": asked, "knowledgeBaseIds": [kb]}
        ),
        lambda_context,
    )
    assert alone.status == 200 and "chloroplasts" not in alone.data["text"]  # the words alone miss it
    reply = call(
        handler.handler, api_event("ai_agent/chat.json", headers=org.headers, body=body), lambda_context
    )
    assert reply.status == 200, reply.body
    assert reply.data["requestModality"] == "text+image"
    assert "chloroplasts" in reply.data["text"]
    assert reply.data["citations"][0]["title"] == "Notes > Plants"  # the best match comes first
    events = lines(stream(org, lambda_context, body).body)
    assert any(e["type"] == "citation" and "chloroplasts" in e["citation"]["text"] for e in events)
    # A model sees the student's words as the question and the image's text beside it.
    model = ScriptedProvider(pieces=["In the chloroplasts."])
    monkeypatch.setattr(answering, "provider", lambda: model)
    started = lines(stream(org, lambda_context, body).body)[0]
    (seen,) = model.calls
    assert seen.question == asked and "photosynthesis" in seen.context_note.lower()
    assert any("chloroplasts" in p.text for p in seen.passages)
    # The chat keeps both, so a follow-up question still knows what the image showed.
    follow_up = {"chatId": started["chatId"], "message": "Why there?"}
    assert stream(org, lambda_context, follow_up).status == 200
    earlier = model.calls[1].history[0]
    assert earlier.role == "user" and asked in earlier.text and "photosynthesis" in earlier.text.lower()


def test_a_streamed_spoken_question_gets_the_transcript_line_of_the_whole_answer(org, lambda_context):
    grant(org.id)
    kb = kb_with_notes(org)
    body = {"audio": b64(spoken_wav("Tell me about sunlight and plants.")), "knowledgeBaseIds": [kb]}
    whole = call(
        handler.handler, api_event("ai_agent/chat.json", headers=org.headers, body=body), lambda_context
    )
    assert whole.status == 200 and "sunlight and plants" in whole.data["transcript"].lower()
    events = lines(stream(org, lambda_context, body).body)
    kinds = [e["type"] for e in events]
    (line,) = [e for e in events if e["type"] == "transcript"]
    assert line == {"type": "transcript", "transcript": whole.data["transcript"]}
    assert kinds.index("transcript") < kinds.index("text")
    typed = lines(stream(org, lambda_context, {"message": "Tell me about plants."}).body)
    assert "transcript" not in [e["type"] for e in typed]  # nothing was spoken


def test_a_chart_is_drawn_when_the_answer_calls_for_one(org, lambda_context, monkeypatch):
    from PIL import Image

    grant(org.id)
    model = ScriptedProvider(
        pieces=["Class averages:\n", "- Maths: 81\n", "- Science: 74\n", "- History: 66\n"]
    )
    monkeypatch.setattr(answering, "provider", lambda: model)
    events = lines(stream(org, lambda_context, {"message": "Plot a chart of the class averages"}).body)
    images = [e for e in events if e["type"] == "image"]
    assert len(images) == 1 and images[0]["mimeType"] == "image/png"
    picture = Image.open(io.BytesIO(base64.b64decode(images[0]["image"])))
    assert picture.format == "PNG" and picture.size[0] >= 300
    # Not asked for a chart: none is drawn.
    plain = lines(stream(org, lambda_context, {"message": "What are the class averages?"}).body)
    assert "image" not in [e["type"] for e in plain]


def test_audio_longer_than_the_limit_is_refused_before_transcription(org, lambda_context, monkeypatch):
    grant(org.id)
    monkeypatch.setenv("AI_MAX_AUDIO_SECONDS", "1")
    ai_settings_module.reset_settings()
    calls = []
    monkeypatch.setattr(speech, "_whisper", lambda: calls.append(1))
    reply = stream(
        org, lambda_context, {"audio": b64(spoken_wav("This sentence lasts longer than a second."))}
    )
    assert reply.status == 400 and "seconds" in reply.body["message"]
    assert calls == []


class _Resampled:
    """Counts the samples PyAV's resampler hands out (every decoded frame goes through it)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        import av

        self.samples = 0
        real = av.AudioResampler
        counter = self

        class Counting:
            def __init__(self, *args, **kwargs):
                self._real = real(*args, **kwargs)

            def resample(self, frame):
                out = self._real.resample(frame)
                counter.samples += sum(f.samples for f in out)
                return out

        monkeypatch.setattr(av, "AudioResampler", Counting)


def test_ninety_minutes_of_low_bitrate_opus_is_refused_from_its_header_before_any_decoding(
    org, lambda_context, monkeypatch
):
    grant(org.id)
    audio = long_opus(90)
    assert len(audio) < 4 * 1024 * 1024  # within the byte limit: only its length gives it away
    resampled = _Resampled(monkeypatch)
    reply = call(
        handler.handler,
        api_event("ai_agent/chat.json", headers=org.headers, body={"audio": b64(audio)}),
        lambda_context,
    )
    assert reply.status == 400 and "limited to 120 seconds" in reply.body["message"]
    assert resampled.samples == 0


def test_audio_that_declares_no_length_is_decoded_only_up_to_the_limit(org, lambda_context, monkeypatch):
    grant(org.id)
    monkeypatch.setenv("AI_MAX_AUDIO_SECONDS", "5")
    ai_settings_module.reset_settings()
    audio = long_opus(10, container="webm")  # ten minutes, no Duration element (a pipe, as browsers record)
    resampled = _Resampled(monkeypatch)
    calls = []
    monkeypatch.setattr(speech, "_whisper", lambda: calls.append(1))
    reply = stream(org, lambda_context, {"audio": b64(audio)})
    assert reply.status == 400 and "limited to 5 seconds" in reply.body["message"]
    # Decoding stopped at the limit (plus one frame), not after ten minutes of samples.
    assert 5 * 16000 <= resampled.samples <= 6 * 16000
    assert calls == []


@pytest.mark.parametrize(
    ("side", "cap"),
    [(30_000, None), (1_200, 1_000_000)],  # far past the cap (Pillow's own guard), just past it (ours)
)
def test_an_image_declaring_a_huge_size_is_refused_from_its_header(
    org, lambda_context, monkeypatch, side, cap
):
    from PIL import ImageFile

    grant(org.id)
    if cap:
        monkeypatch.setenv("AI_MAX_IMAGE_PIXELS", str(cap))
        ai_settings_module.reset_settings()
    bomb = png_bomb(side)
    assert len(bomb) < 1024 * 1024
    monkeypatch.setattr(ImageFile.ImageFile, "load", lambda self: pytest.fail("the pixels were decoded"))
    reply = call(
        handler.handler,
        api_event(
            "ai_agent/chat.json", headers=org.headers, body={"image": b64(bomb), "imageMimeType": "image/png"}
        ),
        lambda_context,
    )
    assert reply.status == 413 and reply.body["error"] == "PAYLOAD_TOO_LARGE"
    assert f"limited to {cap or 40_000_000} pixels" in reply.body["message"]
