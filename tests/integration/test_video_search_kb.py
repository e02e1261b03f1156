"""Answers that cite the moment: a knowledge base can include the org's videos (by reference), and
the AI API's answers over it cite a transcript passage with `videoId`, `startS` (where it is said),
`endS` and a playback URL that starts there, beside document citations; another org's videos and
bases stay out of reach."""

from __future__ import annotations

from typing import Any

import pytest
from ai_agent import handler
from ai_support import ai_env, grant, lines  # noqa: F401 - ai_env: an autouse fixture
from support import api_event, call
from video_support import captions_ready, index_all, lecture, put_transcript, start_of, timed, video

pytest_plugins = ("video_support",)  # the indexer's queue fixture
pytestmark = pytest.mark.usefixtures("video_env")

PHRASE = "The mitochondria turn glucose and oxygen into the energy the cell can use."
NOTES = "# Plants\nPhotosynthesis happens in the chloroplasts, where chlorophyll absorbs sunlight.\n"


def kb_call(org, ctx, name: str, *, kb_id: str | None = None, video_id: str | None = None, body=None) -> Any:
    path, params = None, None
    if kb_id:
        path, params = f"/v1/ai-agent/knowledge-bases/{kb_id}", {"kb_id": kb_id}
        path += {"add_document.json": "/documents"}.get(name.rsplit("/", 1)[1], "")
        if "kb_video" in name:
            path += "/videos"
        if video_id:
            path, params = f"{path}/{video_id}", params | {"video_id": video_id}
    event = api_event(name, headers=org.headers, body=body, path=path, path_params=params)
    return call(handler.handler, event, ctx)


def lesson_in_a_base(org, queue: str, ctx) -> tuple[str, str, list[dict]]:
    """An indexed lesson video and a knowledge base with it and a document; (kbId, videoId, segments)."""
    grant(org.id)
    video_id = video(org.id, title="Biology 3: cells")
    segments = timed(lecture({41: PHRASE}))
    put_transcript(org.id, video_id, segments, title="Biology 3: cells")
    captions_ready(org.id, video_id)
    index_all(queue, ctx)
    kb = kb_call(org, ctx, "ai_agent/create_kb.json", body={"name": "Biology", "description": ""}).data
    kb_id = kb["knowledgeBaseId"]
    doc = kb_call(
        org,
        ctx,
        "ai_agent/add_document.json",
        kb_id=kb_id,
        body={"title": "Plant notes", "contentType": "text/markdown", "content": NOTES},
    )
    assert doc.status == 201, doc.body
    added = kb_call(org, ctx, "ai_agent/add_kb_video.json", kb_id=kb_id, body={"videoId": video_id})
    assert added.status == 201, added.body
    assert added.data | {"addedAt": None} == {
        "videoId": video_id,
        "knowledgeBaseId": kb_id,
        "title": "Biology 3: cells",
        "transcribed": True,
        "passages": added.data["passages"],
        "addedAt": None,
    }
    return kb_id, video_id, segments


def ask(org, ctx, kb_id: str, message: str, stream: bool = False) -> Any:
    name = "ai_agent/chat_stream.json" if stream else "ai_agent/chat.json"
    body = {"message": message, "knowledgeBaseIds": [kb_id], "responseModality": "text"}
    return call(handler.handler, api_event(name, headers=org.headers, body=body), ctx)


def test_an_answer_cites_the_videos_moment_beside_documents(org, index_queue, lambda_context):
    kb_id, video_id, segments = lesson_in_a_base(org, index_queue, lambda_context)

    answer = ask(org, lambda_context, kb_id, "How do mitochondria give the cell energy?")

    assert answer.status == 200, answer.body
    cited = answer.data["citations"][0]
    assert (cited["videoId"], cited["knowledgeBaseId"], cited["title"]) == (
        video_id,
        kb_id,
        "Biology 3: cells",
    )
    assert abs(cited["startS"] - start_of(segments, PHRASE)) <= 2 and cited["endS"] > cited["startS"]
    assert cited["text"].startswith(PHRASE)
    assert f"/v1/cdn/stream/{video_id}/master.m3u8?token=" in cited["playbackUrl"]
    assert cited["playbackUrl"].endswith(f"#t={cited['startS']:.2f}")
    assert PHRASE in answer.data["text"]

    # Documents are cited as before (no video fields), from the same base.
    plants = ask(org, lambda_context, kb_id, "Where does photosynthesis happen?", stream=True)
    first = next(e["citation"] for e in lines(plants.body) if e["type"] == "citation")
    assert (
        first["title"] == "Plant notes > Plants" and first["videoId"] is None and first["playbackUrl"] is None
    )


def test_adding_twice_listing_and_removing_a_video(org, index_queue, lambda_context):
    kb_id, video_id, _ = lesson_in_a_base(org, index_queue, lambda_context)
    again = kb_call(
        org, lambda_context, "ai_agent/add_kb_video.json", kb_id=kb_id, body={"videoId": video_id}
    )
    listed = kb_call(org, lambda_context, "ai_agent/list_kb_videos.json", kb_id=kb_id)

    assert again.status == 200
    assert [(v["videoId"], v["transcribed"]) for v in listed.data["videos"]] == [(video_id, True)]

    gone = kb_call(org, lambda_context, "ai_agent/remove_kb_video.json", kb_id=kb_id, video_id=video_id)
    assert gone.status == 200 and gone.data == {"id": video_id, "deleted": True}
    answer = ask(org, lambda_context, kb_id, "How do mitochondria give the cell energy?")
    assert all(c["videoId"] is None for c in answer.data["citations"])
    twice = kb_call(org, lambda_context, "ai_agent/remove_kb_video.json", kb_id=kb_id, video_id=video_id)
    assert twice.status == 404


def test_another_orgs_videos_and_bases_are_not_found(org, other_org, index_queue, lambda_context):
    kb_id, video_id, _ = lesson_in_a_base(org, index_queue, lambda_context)
    theirs = kb_call(other_org, lambda_context, "ai_agent/create_kb.json", body={"name": "Theirs"}).data

    foreign_video = kb_call(
        other_org,
        lambda_context,
        "ai_agent/add_kb_video.json",
        kb_id=theirs["knowledgeBaseId"],
        body={"videoId": video_id},
    )
    foreign_base = kb_call(
        other_org, lambda_context, "ai_agent/add_kb_video.json", kb_id=kb_id, body={"videoId": video_id}
    )
    listing = kb_call(other_org, lambda_context, "ai_agent/list_kb_videos.json", kb_id=kb_id)
    removal = kb_call(
        other_org, lambda_context, "ai_agent/remove_kb_video.json", kb_id=kb_id, video_id=video_id
    )

    assert [r.status for r in (foreign_video, foreign_base, listing, removal)] == [404, 404, 404, 404]
    assert all(r.body["error"] == "NOT_FOUND" for r in (foreign_video, foreign_base, listing, removal))
    listed = kb_call(org, lambda_context, "ai_agent/list_kb_videos.json", kb_id=kb_id)
    assert [v["videoId"] for v in listed.data["videos"]] == [video_id]  # nothing of ours changed


def test_a_deleted_video_leaves_the_bases_it_was_in(org, index_queue, lambda_context):
    from verriflo import db, media
    from video_support import video_deleted

    kb_id, video_id, _ = lesson_in_a_base(org, index_queue, lambda_context)
    db.collection("video_transcripts").delete_one({"_id": video_id})
    media.delete_video(org.id, video_id)
    video_deleted(org.id, video_id)
    index_all(index_queue, lambda_context)

    listed = kb_call(org, lambda_context, "ai_agent/list_kb_videos.json", kb_id=kb_id)
    assert listed.data == {"videos": []}
    answer = ask(org, lambda_context, kb_id, "How do mitochondria give the cell energy?")
    assert all(c["videoId"] is None for c in answer.data["citations"])
