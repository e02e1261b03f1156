"""Transcripts you can search: a transcript stored per the captions contract and its
`video.captions_ready` event (through the template's rule and the indexer's queue) make the
phrase's moment findable with `GET /v1/cdn/videos/search`, within 2 s of where it is spoken; a new
transcript replaces the old index, a deletion removes it, another org never sees it, and a retry
after a failure at any step of the indexer indexes once."""

from __future__ import annotations

from typing import Any

import pytest
from ai_support import ai_env  # noqa: F401 - an autouse fixture
from cdn import handler as cdn
from support import api_event, call
from verriflo import db, media
from verriflo.errors import ServiceUnavailable
from verriflo_ai import video_search, video_store
from video_support import (
    captions_ready,
    deliveries,
    index_all,
    later,
    lecture,
    put_transcript,
    run_indexer,
    start_of,
    timed,
    video,
    video_deleted,
)

pytest_plugins = ("video_support",)  # the indexer's queue fixture
pytestmark = pytest.mark.usefixtures("video_env")

PHRASE = "The mitochondria turn glucose and oxygen into the energy the cell can use."
OTHER = "Volcanoes form where tectonic plates pull apart or slide beneath each other."


def search(org, ctx, q: str, **params: str) -> Any:
    return call(
        cdn.handler, api_event("cdn/search_videos.json", headers=org.headers, query={"q": q} | params), ctx
    )


def indexed_lesson(
    org_id: str, queue: str, ctx: Any, *, title: str = "Biology 3: cells", at: int = 37
) -> tuple[str, list[dict]]:
    video_id = video(org_id, title=title)
    segments = timed(lecture({at: PHRASE}))
    put_transcript(org_id, video_id, segments, title=title)
    captions_ready(org_id, video_id)
    assert index_all(queue, ctx) == 1
    return video_id, segments


def test_a_transcript_makes_the_phrase_findable_at_its_moment(org, index_queue, lambda_context):
    video_id, segments = indexed_lesson(org.id, index_queue, lambda_context)
    spoken_at = start_of(segments, PHRASE)
    assert spoken_at > 60  # well inside the lesson, not at a passage's start by luck

    reply = search(org, lambda_context, "how do mitochondria make energy for the cell")

    assert reply.status == 200, reply.body
    top = reply.data["results"][0]
    assert (top["videoId"], top["title"], top["kind"], top["roomId"]) == (
        video_id,
        "Biology 3: cells",
        "upload",
        None,
    )
    moment = top["moments"][0]
    assert abs(moment["startS"] - spoken_at) <= 2
    assert moment["text"].startswith(PHRASE)
    assert moment["startS"] < moment["endS"] and moment["endS"] - moment["startS"] <= 40
    assert f"/v1/cdn/stream/{video_id}/master.m3u8?token=" in moment["playbackUrl"]
    assert moment["playbackUrl"].endswith(f"#t={moment['startS']:.2f}")


def test_passages_are_twenty_to_forty_seconds_of_whole_sentences(org, index_queue, lambda_context):
    video_id, segments = indexed_lesson(org.id, index_queue, lambda_context)
    rows = list(db.collection(video_store.PASSAGES).find({"orgId": org.id}).sort("ordinal", 1))
    assert len(rows) == len(video_search.passages([video_store.Segment.model_validate(s) for s in segments]))
    for row in rows[:-1]:
        assert 20 <= row["endS"] - row["startS"] <= 40
        assert row["segments"][0]["startS"] == row["startS"]
    assert [s["text"] for r in rows for s in r["segments"]] == [s["text"] for s in segments]


@pytest.mark.parametrize("q", ["", "   "])
def test_an_empty_query_is_refused(org, lambda_context, q):
    reply = search(org, lambda_context, q)
    assert reply.status == 400
    assert reply.body["error"] == "VALIDATION_ERROR" and "q" in reply.body["message"]


def test_another_orgs_transcripts_are_never_found(org, other_org, index_queue, lambda_context):
    indexed_lesson(org.id, index_queue, lambda_context)
    # An event naming the other org for this org's video indexes nothing for either.
    captions_ready(other_org.id, db.collection("video_transcripts").find_one()["_id"])
    index_all(index_queue, lambda_context)

    assert search(other_org, lambda_context, PHRASE).data == {"results": []}
    assert db.collection(video_store.PASSAGES).count_documents({"orgId": other_org.id}) == 0
    assert search(org, lambda_context, PHRASE).data["results"]


def test_the_kind_filter_keeps_uploads_or_recordings(org, index_queue, lambda_context):
    indexed_lesson(org.id, index_queue, lambda_context)
    recording = video(org.id, title="Class of Monday", kind="recording", room_id="bio-3-monday")
    put_transcript(
        org.id,
        recording,
        timed(lecture({5: PHRASE})),
        title="Class of Monday",
        kind="recording",
        room_id="bio-3-monday",
    )
    captions_ready(org.id, recording, kind="recording", room_id="bio-3-monday")
    index_all(index_queue, lambda_context)

    both = {r["kind"] for r in search(org, lambda_context, PHRASE).data["results"]}
    only = search(org, lambda_context, PHRASE, kind="recording").data["results"]
    assert both == {"upload", "recording"}
    assert [(r["videoId"], r["roomId"]) for r in only] == [(recording, "bio-3-monday")]


def test_a_new_transcript_replaces_the_old_index(org, index_queue, lambda_context):
    video_id, _ = indexed_lesson(org.id, index_queue, lambda_context)
    first = db.collection("video_transcripts").find_one({"_id": video_id})
    segments = timed(lecture({12: OTHER}, count=20))
    put_transcript(org.id, video_id, segments, title="Biology 3: cells", updated_at=later(first))
    captions_ready(org.id, video_id)
    index_all(index_queue, lambda_context)

    found = search(org, lambda_context, PHRASE).data["results"]
    assert all(PHRASE not in m["text"] for r in found for m in r["moments"])
    moment = search(org, lambda_context, "tectonic plates and volcanoes").data["results"][0]["moments"][0]
    assert abs(moment["startS"] - start_of(segments, OTHER)) <= 2
    expected = len(video_search.passages([video_store.Segment.model_validate(s) for s in segments]))
    assert db.collection(video_store.PASSAGES).count_documents({"videoId": video_id}) == expected


def test_the_same_event_twice_and_an_older_one_after_a_newer_index_once(org, index_queue, lambda_context):
    video_id, segments = indexed_lesson(org.id, index_queue, lambda_context)
    passages = db.collection(video_store.PASSAGES).count_documents({"videoId": video_id})
    version = video_store.version(org.id)
    captions_ready(org.id, video_id)
    captions_ready(org.id, video_id)
    assert index_all(index_queue, lambda_context) == 2

    assert db.collection(video_store.PASSAGES).count_documents({"videoId": video_id}) == passages
    assert video_store.version(org.id) == version  # nothing changed, so no reload anywhere


def test_a_deleted_video_leaves_the_index(org, index_queue, lambda_context):
    video_id, _ = indexed_lesson(org.id, index_queue, lambda_context)
    assert search(org, lambda_context, PHRASE).data["results"]
    # The captions pipeline deletes the transcript with the video, and `video.deleted` follows.
    db.collection("video_transcripts").delete_one({"_id": video_id})
    media.delete_video(org.id, video_id)
    video_deleted(org.id, video_id)
    index_all(index_queue, lambda_context)

    assert search(org, lambda_context, PHRASE).data == {"results": []}
    assert db.collection(video_store.PASSAGES).count_documents({"orgId": org.id}) == 0
    assert db.collection(video_store.INDEX).count_documents({"orgId": org.id}) == 0


def test_a_video_deleted_without_an_event_is_never_shown_and_leaves_the_index(
    org, index_queue, lambda_context
):
    video_id, _ = indexed_lesson(org.id, index_queue, lambda_context)
    media.delete_video(org.id, video_id)

    assert search(org, lambda_context, PHRASE).data == {"results": []}
    assert db.collection(video_store.PASSAGES).count_documents({"orgId": org.id}) == 0


class Boom(ServiceUnavailable):
    def __init__(self) -> None:
        super().__init__("injected failure")


STEPS = [
    (video_store, "get_transcript"),
    (video_store, "get_indexed"),
    (video_search, "_embed"),
    (video_store, "write_pending"),
    (video_store, "install"),
]


@pytest.mark.parametrize(("owner", "name"), STEPS, ids=[n for _, n in STEPS])
@pytest.mark.parametrize("after", [False, True], ids=["fails", "dies-after"])
def test_a_retry_after_a_failure_at_any_step_indexes_once(
    org, index_queue, lambda_context, monkeypatch, owner, name, after
):
    video_id = video(org.id, title="Biology 3: cells")
    segments = timed(lecture({37: PHRASE}))
    put_transcript(org.id, video_id, segments, title="Biology 3: cells")
    captions_ready(org.id, video_id)
    (delivery,) = deliveries(index_queue)
    real, fired = getattr(owner, name), []

    def once(*args: Any, **kwargs: Any) -> Any:
        if fired:
            return real(*args, **kwargs)
        fired.append(name)
        if after:
            real(*args, **kwargs)
        raise Boom

    monkeypatch.setattr(owner, name, once)
    assert not run_indexer(delivery, lambda_context)  # back to the queue
    delivery.receives += 1
    assert run_indexer(delivery, lambda_context)
    assert run_indexer(delivery, lambda_context)  # and a duplicate delivery on top

    expected = len(video_search.passages([video_store.Segment.model_validate(s) for s in segments]))
    assert fired == [name]
    assert db.collection(video_store.PASSAGES).count_documents({"videoId": video_id}) == expected
    assert db.collection(video_store.PASSAGES).count_documents({"pending": True}) == 0
    assert video_store.version(org.id) == 1  # installed once
    moment = search(org, lambda_context, PHRASE).data["results"][0]["moments"][0]
    assert abs(moment["startS"] - start_of(segments, PHRASE)) <= 2


def test_a_search_restricted_to_some_videos_finds_them_however_many_better_passages_others_have(
    org, index_queue, lambda_context
):
    # Five videos that say the phrase in every sentence (dozens of passages that match it best) ...
    for n in range(5):
        other = video(org.id, title=f"Revision {n}")
        put_transcript(org.id, other, timed([PHRASE] * 60), title=f"Revision {n}")
        captions_ready(org.id, other)
    assert index_all(index_queue, lambda_context) == 5
    # ... and the one a knowledge base (or a course's tutor) names, which says it once.
    named, segments = indexed_lesson(org.id, index_queue, lambda_context, title="Biology 3: cells")
    assert db.collection(video_store.PASSAGES).count_documents({"orgId": org.id}) > 40

    moments = video_search.search(org.id, "mitochondria energy", limit=4, video_ids={named}, per_video=2)

    assert moments and {m.video_id for m in moments} == {named}
    assert abs(moments[0].start_s - start_of(segments, PHRASE)) <= 2
