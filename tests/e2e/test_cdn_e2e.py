"""CDN & media on the stack deployed to LocalStack, over HTTP: create a video, PUT the file to the
presigned URL, let S3's notification run the transcoder (with the FFmpeg layer), follow the status,
and play the signed URL with ffprobe/ffmpeg; a tampered token is refused."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from media_support import make_video
from support import load_event

# The first test to use the stack pays for bringing it up (build, and uploading the FFmpeg layer).
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(1500)]


def _upload(http, api_url: str, headers: dict[str, str], clip, title: str) -> str:
    """Create the video and PUT the file to its presigned URL; the video id."""
    created = http.post(
        f"{api_url}/v1/cdn/videos", headers=headers, json={"title": title, "sizeBytes": clip.stat().st_size}
    )
    assert created.status_code == 201, created.text
    upload = created.json()["data"]["upload"]
    assert upload["type"] == "put"
    put = http.put(upload["url"], content=clip.read_bytes(), headers=upload["headers"])
    assert put.status_code == 200, put.text
    return created.json()["data"]["video"]["videoId"]


def _finished(http, api_url: str, headers: dict[str, str], video_id: str, within_s: float) -> dict:
    """Poll the video's status until it completes or fails; its last status."""
    deadline, status = time.monotonic() + within_s, {}
    while time.monotonic() < deadline:
        status = http.get(f"{api_url}/v1/cdn/videos/{video_id}/status", headers=headers).json()["data"]
        if status["status"] in ("completed", "failed"):
            break
        time.sleep(1)
    return status


def test_upload_transcode_and_play_over_the_deployed_stack(api_url, demo_key, http, tmp_path):
    headers = {"VF-ORG-ID": demo_key}
    video_id = _upload(http, api_url, headers, make_video(tmp_path / "lesson.mp4"), "e2e lesson")
    status = _finished(http, api_url, headers, video_id, within_s=180)
    assert status.get("status") == "completed", status

    url = http.get(f"{api_url}/v1/cdn/videos/{video_id}/url", headers=headers).json()["data"]
    assert url["type"] == "hls" and "/master.m3u8?token=" in url["url"]
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", url["url"]],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert probe.returncode == 0 and abs(float(probe.stdout) - 3) < 0.5, probe.stderr
    decoded = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", url["url"], "-f", "null", "-"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert decoded.returncode == 0, decoded.stderr

    tampered = url["url"][:-3] + ("AAA" if not url["url"].endswith("AAA") else "BBB")
    assert http.get(tampered).status_code == 403
    assert http.get(f"{api_url}/v1/cdn/videos/{video_id}/status").status_code == 401
    assert http.delete(f"{api_url}/v1/cdn/videos/{video_id}", headers=headers).status_code == 200
    assert http.get(f"{api_url}/v1/cdn/videos/{video_id}", headers=headers).status_code == 404


def test_long_video_takes_the_chunked_path_on_the_stack_and_plays(
    api_url, demo_key, stack_aws, http, tmp_path
):
    """A 10.5-minute source (over CHUNK_THRESHOLD_S, 600 s by default) at 160x90: the S3 trigger
    hands it to the Step Functions state machine, whose Map transcodes 6 chunks of 120 s in
    parallel on the Lambda step function, joins them into one ladder, and the result plays end to
    end through the signed URL."""
    seconds, rate = 630, 10
    clip = make_video(tmp_path / "long.mp4", width=160, height=90, seconds=seconds, rate=rate)
    headers = {"VF-ORG-ID": demo_key}
    video_id = _upload(http, api_url, headers, clip, "e2e long")
    status = _finished(http, api_url, headers, video_id, within_s=900)
    assert status.get("status") == "completed", status

    sfn = stack_aws("stepfunctions")
    [machine] = [
        m for m in sfn.list_state_machines()["stateMachines"] if m["name"].endswith("-chunked-transcode")
    ]
    runs = sfn.list_executions(stateMachineArn=machine["stateMachineArn"])["executions"]
    [run] = [e for e in runs if e["name"] == f"{video_id}-1"]
    assert run["status"] == "SUCCEEDED"
    history = sfn.get_execution_history(executionArn=run["executionArn"], maxResults=1000)["events"]
    iterations = [e["type"] for e in history if e["type"].startswith("MapIteration")]
    assert iterations.count("MapIterationSucceeded") == 6, iterations

    url = http.get(f"{api_url}/v1/cdn/videos/{video_id}/url", headers=headers).json()["data"]
    assert url["type"] == "hls" and url["posterUrl"]
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", url["url"]],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode == 0 and abs(float(probe.stdout) - seconds) < 1, probe.stderr
    # Decoded end to end across the five chunk joins: every frame is there.
    decoded = subprocess.run(
        ["ffmpeg", "-v", "error", "-i", url["url"], "-map", "0:v:0", "-f", "framemd5", "-"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert decoded.returncode == 0, decoded.stderr[-2000:]
    frames = [line for line in decoded.stdout.splitlines() if line and not line.startswith("#")]
    assert abs(len(frames) - seconds * rate) <= rate, len(frames)
    assert http.delete(f"{api_url}/v1/cdn/videos/{video_id}", headers=headers).status_code == 200


def test_the_retention_sweep_reconciles_on_the_stack_and_failed_transcodes_have_a_destination(
    api_url, demo_key, stack_aws, http
):
    """The deployed sweep reaches the transcoder's on-failure queue and the uploads bucket (its
    policies and settings are wired), and the S3-triggered transcoder sends invocations that spent
    every retry to that queue."""
    client = stack_aws("lambda")
    functions = [
        f["FunctionName"]
        for page in client.get_paginator("list_functions").paginate()
        for f in page["Functions"]
    ]
    [sweep] = [f for f in functions if "RecordingRetention" in f]
    [transcoder] = [f for f in functions if "TranscodeFunction" in f]
    config = client.get_function_event_invoke_config(FunctionName=transcoder)
    assert config["MaximumRetryAttempts"] == 2
    assert config["DestinationConfig"]["OnFailure"]["Destination"].endswith(
        client.get_function_configuration(FunctionName=sweep)["Environment"]["Variables"][
            "TRANSCODE_FAILED_QUEUE_URL"
        ].rsplit("/", 1)[1]
    )
    # a video whose upload never came: still within its URL's lifetime, so the sweep leaves it pending
    created = http.post(
        f"{api_url}/v1/cdn/videos",
        headers={"VF-ORG-ID": demo_key},
        json={"title": "never sent", "sizeBytes": 10},
    )
    assert created.status_code == 201, created.text

    reply = client.invoke(
        FunctionName=sweep, Payload=json.dumps(load_event("transcode/retention_schedule.json"))
    )

    assert "FunctionError" not in reply, reply["Payload"].read()
    out = json.loads(reply["Payload"].read())
    assert out["failedInvocations"] == 0 and out["pending"]["failed"] == 0
