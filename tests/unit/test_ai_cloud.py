"""The AWS paths of speech (moto): Polly synthesises the answer's voice, and Transcribe runs a batch
job whose transcript is read from the bucket and whose input clip is cleaned up afterwards."""

from __future__ import annotations

import json

import boto3
import pytest
from verriflo_ai import settings as ai_settings_module
from verriflo_ai import speech

WAV = b"RIFF\x24\x00\x00\x00WAVEfmt "


@pytest.fixture
def cloud(aws_env, monkeypatch):
    monkeypatch.setenv("AI_VOICE_PROVIDER", "aws")
    monkeypatch.setenv("AI_SPEECH_PROVIDER", "aws")
    monkeypatch.setenv("AI_TRANSCRIBE_BUCKET", "verriflo-test-media")
    ai_settings_module.reset_settings()
    yield
    ai_settings_module.reset_settings()


def test_polly_speaks_with_the_voice_asked_for(cloud):
    from verriflo import aws

    seen = []
    aws.client("polly").meta.events.register(
        "before-call.polly.SynthesizeSpeech", lambda params, **_: seen.append(params["body"])
    )
    audio = speech.synthesize("Hello class.", "Matthew")
    assert isinstance(audio, bytes) and audio
    assert (
        seen and json.loads(seen[0])["VoiceId"] == "Matthew" and json.loads(seen[0])["OutputFormat"] == "mp3"
    )


def test_transcribe_job_result_is_read_and_the_clip_removed(cloud, monkeypatch):
    from verriflo import aws

    def service_writes_its_output(params, **_):
        # What Transcribe does when the job finishes: the transcript JSON lands at OutputKey.
        body = params.get("body") or {}
        request = json.loads(body) if isinstance(body, (bytes, str)) else body
        boto3.client("s3").put_object(
            Bucket=request["OutputBucketName"],
            Key=request["OutputKey"],
            Body=json.dumps({"results": {"transcripts": [{"transcript": "where is atp made"}]}}),
        )

    aws.client("transcribe").meta.events.register(
        "before-call.transcribe.StartTranscriptionJob", service_writes_its_output
    )
    monkeypatch.setattr(speech, "decode_audio", lambda data, limit=None: [0.0] * 32000)  # 2 s of audio
    transcript = speech.transcribe(WAV)
    assert transcript.text == "where is atp made" and transcript.duration_s == 2
    keys = [
        o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket="verriflo-test-media").get("Contents", [])
    ]
    assert not any(k.endswith(".wav") for k in keys)
