"""Captions on the stack deployed to LocalStack, over HTTP: a video whose audio is espeak-ng
reading a known script is uploaded; the transcoder starts the captions worker (CaptionsFunction,
with the speech layer) beside the transcode; the served master playlist gains a SUBTITLES
rendition ffprobe lists; the `.vtt` matches the script (word error rate printed); a silent video
gets `none`; the owner's `.vtt` replaces the automatic one; a bad one is 400; another org's ids
are 404."""

from __future__ import annotations

import subprocess
import time
import uuid

import pytest
from speech_support import SCRIPT, silent_video, speech_video, word_error_rate
from verriflo import webvtt

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]


def _upload(http, api_url: str, headers: dict[str, str], clip, title: str) -> str:
    created = http.post(
        f"{api_url}/v1/cdn/videos", headers=headers, json={"title": title, "sizeBytes": clip.stat().st_size}
    )
    assert created.status_code == 201, created.text
    upload = created.json()["data"]["upload"]
    put = http.put(upload["url"], content=clip.read_bytes(), headers=upload["headers"])
    assert put.status_code == 200, put.text
    return created.json()["data"]["video"]["videoId"]


def _captions_settled(http, api_url: str, headers: dict[str, str], video_id: str, within_s: float) -> dict:
    """Poll the video until it is transcoded and its captions are no longer pending (bounded)."""
    deadline, video = time.monotonic() + within_s, {}
    while time.monotonic() < deadline:
        video = http.get(f"{api_url}/v1/cdn/videos/{video_id}", headers=headers).json()["data"]
        if video["status"] in ("completed", "failed") and video["captions"] != "pending":
            break
        time.sleep(2)
    return video


def test_a_spoken_lesson_gets_captions_in_its_stream_and_as_a_vtt_and_owners_replace_them(
    api_url, demo_key, http, tmp_path, verriflo_cli
):
    headers = {"VF-ORG-ID": demo_key}
    video_id = _upload(http, api_url, headers, speech_video(tmp_path / "lesson.mp4"), "e2e spoken lesson")
    video = _captions_settled(http, api_url, headers, video_id, within_s=600)
    assert (video["status"], video["captions"]) == ("completed", "ready"), video

    url = http.get(f"{api_url}/v1/cdn/videos/{video_id}/url", headers=headers).json()["data"]["url"]
    master = http.get(url).text
    assert '#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID="subs"' in master and 'SUBTITLES="subs"' in master
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-strict", "experimental"]
        + ["-show_entries", "stream=codec_type,codec_name", "-of", "csv=p=0", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode == 0 and "webvtt,subtitle" in probe.stdout.splitlines(), (
        probe.stdout + probe.stderr
    )

    vtt = http.get(f"{api_url}/v1/cdn/videos/{video_id}/captions", headers=headers, params={"format": "vtt"})
    assert vtt.status_code == 200 and vtt.headers["content-type"].startswith("text/vtt")
    said = " ".join(webvtt.plain(c.text) for c in webvtt.parse(vtt.text))
    wer = word_error_rate(SCRIPT, said)
    print(f"\nWER on the deployed stack: {wer:.3f} ({said!r})")
    assert wer <= 0.15
    text = http.get(f"{api_url}/v1/cdn/videos/{video_id}/captions", headers=headers, params={"format": "txt"})
    cues = [webvtt.plain(c.text) for c in webvtt.parse(vtt.text)]
    assert text.status_code == 200 and text.text.splitlines() == cues  # the same sentences, as text

    bad = http.put(
        f"{api_url}/v1/cdn/videos/{video_id}/captions", headers=headers, json={"vtt": "not webvtt"}
    )
    assert bad.status_code == 400 and bad.json()["error"] == "VALIDATION_ERROR"
    own = "WEBVTT\n\n00:00:00.500 --> 00:00:03.000\nOur own words about photosynthesis.\n"
    put = http.put(f"{api_url}/v1/cdn/videos/{video_id}/captions", headers=headers, json={"vtt": own})
    assert put.status_code == 200 and put.json()["data"]["source"] == "upload", put.text
    replaced = http.get(f"{api_url}/v1/cdn/videos/{video_id}/captions", headers=headers)
    assert "Our own words about photosynthesis." in replaced.text

    other = verriflo_cli("org", "create", f"e2e-captions-{uuid.uuid4().hex[:8]}", "--credits", "100")
    stranger = {"VF-ORG-ID": other["apiKey"]}
    for method, suffix, body in (
        ("GET", "/captions", None),
        ("GET", "/captions/status", None),
        ("PUT", "/captions", {"vtt": own}),
    ):
        reply = http.request(
            method, f"{api_url}/v1/cdn/videos/{video_id}{suffix}", headers=stranger, json=body
        )
        assert reply.status_code == 404, (method, suffix, reply.text)


def test_a_silent_video_gets_captions_none_and_no_subtitles(api_url, demo_key, http, tmp_path):
    headers = {"VF-ORG-ID": demo_key}
    video_id = _upload(http, api_url, headers, silent_video(tmp_path / "silent.mp4"), "e2e silence")
    video = _captions_settled(http, api_url, headers, video_id, within_s=600)
    assert (video["status"], video["captions"]) == ("completed", "none"), video
    url = http.get(f"{api_url}/v1/cdn/videos/{video_id}/url", headers=headers).json()["data"]["url"]
    assert "SUBTITLES" not in http.get(url).text
    assert http.get(f"{api_url}/v1/cdn/videos/{video_id}/captions", headers=headers).status_code == 404
