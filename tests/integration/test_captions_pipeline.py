"""Automatic captions in-process: the transcoder starts them beside the transcode, the captions
worker hears a video whose audio is espeak-ng reading a known script (real FFmpeg, real
faster-whisper tiny.en, moto S3, the real MongoDB-wire server), and publishes HLS subtitles, the
`.vtt`, the transcript and `video.captions_ready`, charged once; silence is `none`; retries after a
failure at any step complete once."""

from __future__ import annotations

import boto3
import pytest
from captions_support import caption, uploaded_and_transcoded
from media_support import MEDIA, keys, make_video, tap_media_events, use_media_env
from speech_support import SCRIPT, silent_video, speech_video, word_error_rate
from verriflo import db, events, ledger, media, outbox, transcripts, webvtt


@pytest.fixture(autouse=True)
def media_env(stores, monkeypatch):
    use_media_env(monkeypatch)
    transcripts.captions_settings.cache_clear()
    yield
    transcripts.captions_settings.cache_clear()


def fund(org_id: str, credits: int = 100) -> None:
    ledger.grant(ledger.UsageEvent(entry_id=f"g-{org_id}", org_id=org_id, service="grant", credits=credits))


def captions_charges(org_id: str) -> list[dict]:
    return list(db.collection(ledger.LEDGER).find({"orgId": org_id, "service": "captions"}))


@pytest.fixture(scope="module")
def lesson(tmp_path_factory):
    return speech_video(tmp_path_factory.mktemp("speech") / "lesson.mp4")


def test_speech_video_gets_subtitles_vtt_transcript_event_and_one_charge_beside_the_transcode(
    org, lesson, lambda_context
):
    fund(org.id)
    tap = tap_media_events()
    video = uploaded_and_transcoded(org.id, lesson, lambda_context)
    # the transcoder started the captions (no worker configured here: they wait, pending)
    assert transcripts.state(video).status == "pending"
    assert video.status == "completed" and video.playable  # playable without waiting for captions
    tap.drain()

    assert caption(video) == {"videoId": video.id, "outcome": "ready", "message": ""}

    done = media.get_video(org.id, video.id)
    state = transcripts.state(done)
    assert (state.status, state.source, state.language) == ("ready", "auto", "en")
    transcript = transcripts.get(org.id, video.id)
    said = " ".join(s.text for s in transcript.segments)
    wer = word_error_rate(SCRIPT, said)
    print(f"WER {wer:.3f}: {said}")
    assert wer <= 0.15
    assert (transcript.kind, transcript.source, transcript.room_id) == ("upload", "auto", None)
    pairs = zip(transcript.segments, transcript.segments[1:], strict=False)
    assert all(a.end_s <= b.start_s + 0.05 for a, b in pairs)  # in time order
    assert transcript.segments[0].text.startswith("Welcome") and transcript.segments[0].start_s < 1
    assert len(transcript.segments) >= 4  # sentences, not one blob
    stored = keys(MEDIA, state.prefix)
    assert {state.prefix + "captions.vtt", state.prefix + "subs/index.m3u8"} <= stored
    s3 = boto3.client("s3")
    playlist = s3.get_object(Bucket=MEDIA, Key=state.prefix + "subs/index.m3u8")["Body"].read().decode()
    names = [line for line in playlist.splitlines() if line and not line.startswith("#")]
    assert len(names) == len([k for k in stored if k.endswith(".vtt")]) - 1 >= 5  # 4 s segments
    first = s3.get_object(Bucket=MEDIA, Key=state.prefix + "subs/" + names[0])["Body"].read().decode()
    # 1.4 s, FFmpeg's MPEG-TS start, plus x264's two frames of reordering at 15 fps
    assert first.startswith(f"WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:{126000 + 2 * 6000},LOCAL:00:00:00.000\n")
    assert state.mpegts == 138000
    whole = s3.get_object(Bucket=MEDIA, Key=state.prefix + "captions.vtt")["Body"].read().decode()
    assert len(webvtt.parse(whole)) == len(transcript.segments)

    published = [e for e in tap.drain() if e["type"] == "video.captions_ready"]
    assert len(published) == 1
    assert published[0]["data"] | {"durationS": 0} == {
        "videoId": video.id, "kind": "upload", "roomId": None, "title": "Photosynthesis",
        "captions": "ready", "language": "en", "source": "auto", "durationS": 0,
    }  # fmt: skip
    assert published[0]["data"]["durationS"] > 15
    charges = captions_charges(org.id)
    assert len(charges) == 1 and charges[0]["quantity"] > 0.25  # minutes

    # Another delivery of the same start (or a late retry) changes nothing.
    assert caption(video, "req-2")["outcome"] == "duplicate"
    assert caption(video, "req-1")["outcome"] == "duplicate"
    assert tap.drain() == [] and len(captions_charges(org.id)) == 1


def test_silence_and_a_tone_are_none_and_a_video_without_audio_is_none_at_once(org, tmp_path, lambda_context):
    fund(org.id)
    for name, path in {
        "silence": silent_video(tmp_path / "silence.mp4"),
        "tone": silent_video(tmp_path / "tone.mp4", tone=True),
    }.items():
        video = uploaded_and_transcoded(org.id, path, lambda_context)
        assert caption(video, f"req-{name}")["outcome"] == "none", name
        state = transcripts.state(media.get_video(org.id, video.id))
        assert state.status == "none" and "speech" in state.reason
        with pytest.raises(Exception, match="no transcript"):
            transcripts.get(org.id, video.id)
    mute = uploaded_and_transcoded(org.id, make_video(tmp_path / "mute.mp4", audio=False), lambda_context)
    assert transcripts.state(mute).status == "none"
    assert caption(mute)["outcome"] == "duplicate"  # nothing to claim
    assert captions_charges(org.id) == []


def test_without_credits_for_captions_they_fail_with_the_reason_and_the_video_still_plays(
    org, lesson, lambda_context
):
    ledger.grant(ledger.UsageEvent(entry_id="g-small", org_id=org.id, service="grant", credits=1))
    video = uploaded_and_transcoded(org.id, lesson, lambda_context)
    # the transcode's charge took the balance below what the captions would cost
    ledger.record_usage(
        ledger.UsageEvent(entry_id="spend", org_id=org.id, service="transcode", credits=ledger.from_milli(
            ledger.balance_milli(org.id)))
    )  # fmt: skip
    assert caption(video)["outcome"] == "failed"
    done = media.get_video(org.id, video.id)
    state = transcripts.state(done)
    assert state.status == "failed" and "credits" in state.reason.lower()
    assert done.status == "completed" and done.playable
    assert captions_charges(org.id) == []


def test_a_video_longer_than_the_captions_limit_fails_its_captions_only(
    org, lesson, lambda_context, monkeypatch
):
    fund(org.id)
    monkeypatch.setenv("CAPTIONS_MAX_DURATION_S", "5")
    transcripts.captions_settings.cache_clear()
    video = uploaded_and_transcoded(org.id, lesson, lambda_context)
    assert caption(video)["outcome"] == "failed"
    assert "longer than 5 seconds" in transcripts.state(media.get_video(org.id, video.id)).reason
    assert captions_charges(org.id) == []


@pytest.mark.parametrize("step", ["download", "files", "transcript", "settle", "publish"])
def test_a_retry_after_a_failure_at_any_step_completes_once(org, lesson, lambda_context, monkeypatch, step):
    fund(org.id)
    tap = tap_media_events()
    video = uploaded_and_transcoded(org.id, lesson, lambda_context)
    tap.drain()
    from verriflo import objects

    targets = {
        "download": (objects, "download"),
        "files": (objects, "put_text"),
        "transcript": (transcripts, "save"),
        "settle": (transcripts, "settle"),
        "publish": (events, "publish_many"),
    }
    module, name = targets[step]
    real = getattr(module, name)
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError(f"{step} failed once")
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, flaky)
    with pytest.raises(RuntimeError):
        caption(video, "req-1")
    # Lambda retries the same invocation (same request id)
    outcome = caption(video, "req-1")["outcome"]
    assert outcome == ("duplicate" if step == "publish" else "ready")
    assert transcripts.state(media.get_video(org.id, video.id)).status == "ready"
    assert [e["type"] for e in tap.drain()].count("video.captions_ready") == 1
    assert len(captions_charges(org.id)) == 1
    assert outbox.pending(media.VIDEOS, video.id) == []


def test_captions_whose_worker_was_lost_fail_in_the_sweep_and_live_ones_stay(org, lesson, lambda_context):
    from datetime import timedelta

    from verriflo.orgs import now

    fund(org.id)
    lost = uploaded_and_transcoded(org.id, lesson, lambda_context)  # pending, never claimed
    assert transcripts.fail_stalled(at=now()) == 0  # not yet overdue
    later = now() + timedelta(seconds=2 * transcripts.captions_settings().lease_s + 60)
    assert transcripts.fail_stalled(at=later) == 1
    state = transcripts.state(media.get_video(org.id, lost.id))
    assert state.status == "failed" and "did not finish" in state.reason
    assert caption(lost)["outcome"] == "duplicate"  # a late invocation finds nothing to claim
    assert transcripts.fail_stalled(at=later) == 0


def test_a_video_deleted_while_it_is_captioned_leaves_no_transcript_or_files(
    org, lesson, lambda_context, monkeypatch
):
    fund(org.id)
    video = uploaded_and_transcoded(org.id, lesson, lambda_context)
    real = transcripts.settle

    def deleted_first(*args, **kwargs):
        media.purge(media.get_video(org.id, video.id))  # the owner deletes it as the worker finishes
        return real(*args, **kwargs)

    monkeypatch.setattr(transcripts, "settle", deleted_first)
    assert caption(video)["outcome"] == "duplicate"
    with pytest.raises(Exception, match="no transcript"):
        transcripts.get(org.id, video.id)
    assert keys(MEDIA, transcripts.all_files_prefix(org.id, video.id)) == set()
    assert captions_charges(org.id) == []


def test_a_class_recording_gets_a_transcript_of_kind_recording_with_its_room(org, lesson, monkeypatch):
    from captions import logic

    fund(org.id)
    tap = tap_media_events()
    recording = media.insert_video(
        org.id,
        title="Biology, week 3",
        size_bytes=0,
        content_type="video/mp4",
        kind="recording",
        room_id="bio-3",
    )
    boto3.client("s3").upload_file(str(lesson), recording.source_bucket, recording.source_key)
    assert transcripts.start(recording, has_audio=True)
    monkeypatch.setattr(logic, "CLOCK_WAIT_S", 0.0)  # not transcoded here: FFmpeg's usual clock

    assert caption(recording)["outcome"] == "ready"
    transcript = transcripts.get(org.id, recording.id)
    assert (transcript.kind, transcript.room_id, transcript.title) == (
        "recording",
        "bio-3",
        "Biology, week 3",
    )
    (event,) = [e for e in tap.drain() if e["type"] == "video.captions_ready"]
    assert (event["data"]["kind"], event["data"]["roomId"]) == ("recording", "bio-3")
    (charge,) = captions_charges(org.id)
    assert charge["roomId"] == "bio-3"  # counted for the class, like its transcode
    assert transcripts.state(media.get_video(org.id, recording.id)).mpegts == webvtt.MPEGTS_ZERO
