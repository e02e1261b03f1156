"""Helpers for the video search tests: transcripts stored exactly as the captions pipeline stores
them (the `video_transcripts` contract), its `video.captions_ready` event put on the bus, and the
indexer's queue fed by the template's own rule."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from ai_support import Delivery, queued
from verriflo import db, events, media
from verriflo.orgs import now

from scripts import sam_env

BUS = "verriflo-test-events"


def timed(
    sentences: list[str], start_s: float = 0.0, words_per_s: float = 2.5, pause_s: float = 0.6
) -> list[dict]:
    """Sentences as transcript segments, one after another at a speaking pace."""
    segments, at = [], start_s
    for sentence in sentences:
        length = max(1.0, len(sentence.split()) / words_per_s)
        segments.append({"startS": round(at, 2), "endS": round(at + length, 2), "text": sentence})
        at += length + pause_s
    return segments


def lecture(topic_sentences: dict[int, str], count: int = 60) -> list[str]:
    """`count` sentences of ordinary classroom talk, with the given sentences at their positions."""
    filler = [
        "Please open your notebooks to a fresh page before we go on.",
        "Let us take a moment to look back at what we did last week.",
        "If anything is unclear, raise your hand and ask at any time.",
        "Write the date at the top of the page so your notes stay in order.",
        "We will come back to the homework at the end of the lesson.",
        "Remember that the quiz on Friday covers everything up to today.",
    ]
    return [topic_sentences.get(i, filler[i % len(filler)]) for i in range(count)]


def start_of(segments: list[dict], text: str) -> float:
    """When the sentence `text` starts."""
    return next(s["startS"] for s in segments if s["text"] == text)


def video(org_id: str, *, title: str, kind: media.Kind = "video", room_id: str | None = None) -> str:
    """A transcoded, playable video (or recording) of the org; its id."""
    stored = media.insert_video(
        org_id, title=title, size_bytes=1000, content_type="video/mp4", kind=kind, room_id=room_id
    )
    db.collection(media.VIDEOS).update_one(
        {"_id": stored.id}, {"$set": {"status": "completed", "progress": 100, "playable": True}}
    )
    return stored.id


def put_transcript(
    org_id: str,
    video_id: str,
    segments: list[dict],
    *,
    title: str,
    kind: str = "upload",
    room_id: str | None = None,
    updated_at: datetime | None = None,
) -> dict[str, Any]:
    """Write (or replace) a video's transcript as the captions pipeline does; the stored document."""
    at = updated_at or now()
    doc = {
        "_id": video_id,
        "orgId": org_id,
        "videoId": video_id,
        "kind": kind,
        "roomId": room_id,
        "title": title,
        "source": "auto",
        "language": "en",
        "durationS": max((s["endS"] for s in segments), default=0.0),
        "segments": segments,
        "createdAt": at,
        "updatedAt": at,
    }
    db.collection("video_transcripts").replace_one({"_id": video_id}, doc, upsert=True)
    return doc


def later(doc: dict[str, Any], seconds: float = 60) -> datetime:
    """A time after the transcript's last write (a replacement's `updatedAt`)."""
    return doc["updatedAt"] + timedelta(seconds=seconds)


def captions_ready(org_id: str, video_id: str, *, kind: str = "upload", room_id: str | None = None) -> None:
    """Publish `video.captions_ready` as the captions pipeline does (data per the contract)."""
    data = {
        "videoId": video_id,
        "kind": kind,
        "roomId": room_id,
        "captions": "ready",
        "language": "en",
        "source": "auto",
        "durationS": 0.0,
    }
    events.publish("video.captions_ready", org_id, data)


def video_deleted(org_id: str, video_id: str) -> None:
    """Publish `video.deleted`."""
    events.publish("video.deleted", org_id, {"videoId": video_id})


@pytest.fixture
def video_env(stores, monkeypatch):
    """The media settings (buckets, the playback signing key) and no cached search matrices."""
    from media_support import use_media_env
    from verriflo_ai import video_search

    use_media_env(monkeypatch)
    video_search.clear_index_cache()
    yield
    video_search.clear_index_cache()


@pytest.fixture
def index_queue() -> str:
    """The indexer's queue, fed by the template's VideoIndexRule pattern on the test bus."""
    import boto3

    sqs, bus = boto3.client("sqs"), boto3.client("events")
    url = sqs.create_queue(QueueName="verriflo-test-video-index")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    pattern = sam_env.load_template()["Resources"]["VideoIndexRule"]["Properties"]["EventPattern"]
    bus.put_rule(Name="video-index", EventBusName=BUS, EventPattern=json.dumps(pattern))
    bus.put_targets(Rule="video-index", EventBusName=BUS, Targets=[{"Id": "q", "Arn": arn}])
    return url


def deliveries(queue_url: str) -> list[Delivery]:
    """Take every message off the indexer's queue (as the event source mapping would)."""
    return queued(queue_url)


def run_indexer(delivery: Delivery, ctx: Any) -> bool:
    """The indexer in-process on one delivery; True when it succeeded (no item failure)."""
    from ai_ingest import transcripts

    return not transcripts.handler(delivery.event(), ctx)["batchItemFailures"]


def index_all(queue_url: str, ctx: Any) -> int:
    """Deliver everything queued to the indexer; how many deliveries there were."""
    taken = deliveries(queue_url)
    for delivery in taken:
        assert run_indexer(delivery, ctx)
    return len(taken)
