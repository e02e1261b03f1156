"""Captions through the cdn API in-process (moto S3 over HTTP, so ffprobe plays the signed stream;
real FFmpeg and faster-whisper): the served master playlist gains a SUBTITLES rendition ffprobe
lists, the captions download as one `.vtt` and as text, an owner's `.vtt` replaces them, a bad one
changes nothing, and another org's ids are 404."""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest
from apigw_server import serve
from captions_support import caption, uploaded_and_transcoded
from cdn import handler as cdn
from media_support import make_video, tap_media_events, use_media_env
from media_support import s3_over_http as s3_http
from speech_support import SCRIPT, speech_video, word_error_rate
from support import api_event, call
from verriflo import aws, ledger, media, transcripts, webvtt

OWNER_VTT = """WEBVTT

NOTE written by the teacher

1
00:00:00.500 --> 00:00:03.000 align:start
Welcome to <b>photosynthesis</b> &amp; light.

00:00:03.200 --> 00:00:06.000
Plants make sugar from water and carbon dioxide.
"""


@pytest.fixture(scope="module")
def s3_over_http():
    with s3_http() as url:
        yield url


@pytest.fixture(autouse=True)
def media_env(stores, monkeypatch, s3_over_http):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3_over_http)
    aws.reset_clients()
    use_media_env(monkeypatch)
    transcripts.captions_settings.cache_clear()


@pytest.fixture(scope="module")
def lesson(tmp_path_factory):
    return speech_video(tmp_path_factory.mktemp("speech") / "lesson.mp4")


@pytest.fixture
def captioned(org, lesson, lambda_context):
    ledger.grant(ledger.UsageEvent(entry_id=f"g-{org.id}", org_id=org.id, service="grant", credits=100))
    video = uploaded_and_transcoded(org.id, lesson, lambda_context)
    assert caption(video)["outcome"] == "ready"
    return video


def request(org, ctx, case: str, video_id: str, suffix: str, **kwargs):
    event = api_event(
        f"cdn/{case}.json",
        headers=org.headers,
        path_params={"video_id": video_id},
        path=f"/v1/cdn/videos/{video_id}{suffix}",
        **kwargs,
    )
    return call(cdn.handler, event, ctx)


def probe(url: str) -> str:
    # FFmpeg before 8.0 drops HLS subtitle renditions unless told to take experimental features
    # (its hls demuxer's `strict_std_compliance` gate); 8.0 lists them as they are.
    done = subprocess.run(
        ["ffprobe", "-v", "error", "-strict", "experimental"]
        + ["-show_entries", "stream=codec_type,codec_name", "-of", "csv=p=0", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_served_master_has_a_subtitles_rendition_ffprobe_lists_timed_to_the_video(
    org, captioned, lambda_context
):
    with serve(cdn.handler) as base:
        url = httpx.get(f"{base}/v1/cdn/videos/{captioned.id}/url", headers=org.headers).json()["data"]["url"]
        token = url.split("token=")[1]
        master = httpx.get(url).text
        media_lines = [line for line in master.splitlines() if line.startswith("#EXT-X-MEDIA:")]
        assert media_lines == [
            '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs",NAME="English",LANGUAGE="en",DEFAULT=YES,'
            f'AUTOSELECT=YES,FORCED=NO,URI="subs/index.m3u8?token={token}"'
        ]
        variants = [line for line in master.splitlines() if line.startswith("#EXT-X-STREAM-INF:")]
        assert variants and all(line.endswith(',SUBTITLES="subs"') for line in variants)

        streams = probe(url)
        assert "webvtt,subtitle" in streams.splitlines(), streams
        assert "video" in streams and "audio" in streams

        subs = httpx.get(f"{base}/v1/cdn/stream/{captioned.id}/subs/index.m3u8", params={"token": token})
        assert subs.status_code == 200 and "#EXT-X-ENDLIST" in subs.text
        signed = [line for line in subs.text.splitlines() if line and not line.startswith("#")]
        first = httpx.get(signed[0])
        assert first.status_code == 200 and first.headers["content-type"].startswith("text/vtt")
        # the map is the video's clock: the time its first frame is shown in its first segment
        rendition = httpx.get(f"{base}/v1/cdn/stream/{captioned.id}/360p/index.m3u8", params={"token": token})
        segment = next(line for line in rendition.text.splitlines() if line and not line.startswith("#"))
        first_frame = (
            subprocess.run(
                ["ffprobe", "-v", "error", "-select_streams", "v:0", "-read_intervals", "%+#1"]
                + ["-show_entries", "packet=pts", "-of", "csv=p=0", segment],
                capture_output=True,
                text=True,
                timeout=60,
            )
            .stdout.split()[0]
            .strip(",")
        )
        assert f"X-TIMESTAMP-MAP=MPEGTS:{int(first_frame)},LOCAL:00:00:00.000" in first.text
        assert int(first_frame) != webvtt.MPEGTS_ZERO  # x264's reordering delay is counted

        # a foreign token cannot reach the subtitles
        assert httpx.get(f"{base}/v1/cdn/stream/{captioned.id}/subs/index.m3u8").status_code == 403


def test_captions_download_as_vtt_and_text_and_show_on_status_and_list(org, captioned, lambda_context):
    vtt = request(org, lambda_context, "get_captions", captioned.id, "/captions", query={"format": "vtt"})
    assert vtt.status == 200 and vtt.headers["Content-Type"].startswith("text/vtt")
    assert f'filename="{captioned.id}.vtt"' in vtt.headers["Content-Disposition"]
    cues = webvtt.parse(vtt.body)
    text = request(org, lambda_context, "get_captions", captioned.id, "/captions", query={"format": "txt"})
    assert text.status == 200 and text.headers["Content-Type"].startswith("text/plain")
    assert len(text.body.strip().splitlines()) == len(cues)
    print(f"WER {word_error_rate(SCRIPT, text.body):.3f}")
    assert word_error_rate(SCRIPT, text.body) <= 0.15

    status = request(org, lambda_context, "video_status", captioned.id, "/status")
    assert status.data["captions"] == "ready" and set(status.data) == {
        "videoId", "status", "progress", "createdAt", "captions"
    }  # fmt: skip
    info = request(org, lambda_context, "captions_status", captioned.id, "/captions/status").data
    assert (info["captions"], info["source"], info["language"], info["cues"]) == (
        "ready",
        "auto",
        "en",
        len(cues),
    )
    listed = call(cdn.handler, api_event("cdn/list_videos.json", headers=org.headers), lambda_context).data
    assert [(v["videoId"], v["captions"]) for v in listed["videos"]] == [(captioned.id, "ready")]


def test_an_owners_vtt_replaces_the_automatic_captions_in_stream_transcript_and_event(
    org, captioned, lambda_context
):
    tap = tap_media_events()
    tap.drain()
    put = request(org, lambda_context, "put_captions", captioned.id, "/captions", body={"vtt": OWNER_VTT})
    assert put.status == 200, put.body
    assert (put.data["captions"], put.data["source"], put.data["cues"]) == ("ready", "upload", 2)

    transcript = transcripts.get(org.id, captioned.id)
    assert transcript.source == "upload"
    assert [(s.start_s, s.end_s, s.text) for s in transcript.segments] == [
        (0.5, 3.0, "Welcome to photosynthesis & light."),
        (3.2, 6.0, "Plants make sugar from water and carbon dioxide."),
    ]
    (event,) = [e for e in tap.drain() if e["type"] == "video.captions_ready"]
    assert (event["data"]["source"], event["data"]["videoId"]) == ("upload", captioned.id)
    vtt = request(org, lambda_context, "get_captions", captioned.id, "/captions")
    assert "Welcome to <b>photosynthesis</b> &amp; light." in vtt.body

    # a late automatic run (a retry of the worker) never replaces the owner's words
    assert caption(captioned, "late-retry")["outcome"] == "duplicate"
    assert transcripts.get(org.id, captioned.id).source == "upload"

    # each upload is a new revision with its own event
    second = OWNER_VTT.replace("Plants make sugar", "Plants make glucose")
    assert (
        request(org, lambda_context, "put_captions", captioned.id, "/captions", body={"vtt": second}).status
        == 200
    )
    assert [e["data"]["source"] for e in tap.drain() if e["type"] == "video.captions_ready"] == ["upload"]
    assert "glucose" in transcripts.get(org.id, captioned.id).segments[1].text


@pytest.mark.parametrize(
    ("vtt", "names"),
    [
        ("1\n00:00:01.000 --> 00:00:02.000\nhello\n", "WEBVTT"),
        ("WEBVTT\n\n00:00:01.000 -> 00:00:02.000\nhello\n", "line 3"),
        ("WEBVTT\n\n00:00:03.000 --> 00:00:02.000\nbackwards\n", "end after"),
        ("WEBVTT\n\n00:00:01 --> 00:00:02\nno millis\n", "hh:mm:ss.ttt"),
        ("WEBVTT\n\nNOTE only a note\n", "no cues"),
    ],
)
def test_a_bad_vtt_is_400_naming_what_is_wrong_and_changes_nothing(
    org, captioned, lambda_context, vtt, names
):
    before = transcripts.get(org.id, captioned.id)
    reply = request(org, lambda_context, "put_captions", captioned.id, "/captions", body={"vtt": vtt})
    assert (
        reply.status == 400 and reply.body["error"] == "VALIDATION_ERROR" and names in reply.body["message"]
    )
    assert transcripts.get(org.id, captioned.id) == before
    assert transcripts.state(media.get_video(org.id, captioned.id)).source == "auto"


def test_another_orgs_video_is_404_on_every_captions_route(org, other_org, captioned, lambda_context):
    for case, suffix, body in (
        ("get_captions", "/captions", None),
        ("captions_status", "/captions/status", None),
        ("put_captions", "/captions", {"vtt": OWNER_VTT}),
    ):
        reply = request(other_org, lambda_context, case, captioned.id, suffix, body=body)
        assert reply.status == 404 and captioned.id not in json.dumps(reply.body), case
    assert transcripts.get(org.id, captioned.id).source == "auto"


def test_pending_captions_are_409_and_a_video_without_speech_404(org, lambda_context, tmp_path):
    ledger.grant(ledger.UsageEvent(entry_id="g", org_id=org.id, service="grant", credits=100))
    pending = uploaded_and_transcoded(org.id, make_video(tmp_path / "a.mp4"), lambda_context)
    reply = request(org, lambda_context, "get_captions", pending.id, "/captions")
    assert reply.status == 409 and reply.body["error"] == "CONFLICT"
    mute = uploaded_and_transcoded(org.id, make_video(tmp_path / "b.mp4", audio=False), lambda_context)
    reply = request(org, lambda_context, "get_captions", mute.id, "/captions")
    assert reply.status == 404 and "no audio" in reply.body["message"]
    # a video without captions plays without a subtitles rendition
    with serve(cdn.handler) as base:
        url = httpx.get(f"{base}/v1/cdn/videos/{mute.id}/url", headers=org.headers).json()["data"]["url"]
        assert "SUBTITLES" not in httpx.get(url).text
