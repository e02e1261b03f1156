"""A room's tutor draws on the class's own recordings once they are transcribed: a student asks about
what the teacher said in an earlier class of the same course (rooms share a `courseId`) and the
answer cites that recording's moment (`kind: recording`, `videoId`, `roomId`, `startS`, `endS`,
`playbackUrl`); a class of another course, or of no course, does not see it."""

from __future__ import annotations

import pytest
from ai_support import ai_env  # noqa: F401 - an autouse fixture
from tutor_support import ask_stream, end_class, open_class, question
from video_support import captions_ready, index_all, lecture, put_transcript, start_of, timed, video

pytest_plugins = ("livekit_support", "tutor_support", "video_support")
pytestmark = pytest.mark.usefixtures("video_env")

SAID = "Remember that the mitochondria turn glucose and oxygen into the energy the cell can use."


def recorded_class(org, livekit, ctx, queue: str) -> tuple[str, list[dict]]:
    """Monday's class of the course, ended, its recording transcribed; (videoId, segments)."""
    monday = open_class(org, livekit, ctx, room_id="bio-3-monday", title="Biology 3", course_id="bio-3")
    end_class(monday, ctx)
    recording = video(org.id, title="Biology 3, Monday", kind="recording", room_id="bio-3-monday")
    segments = timed(lecture({44: SAID}))
    put_transcript(
        org.id, recording, segments, title="Biology 3, Monday", kind="recording", room_id="bio-3-monday"
    )
    captions_ready(org.id, recording, kind="recording", room_id="bio-3-monday")
    assert index_all(queue, ctx) == 1
    return recording, segments


def recording_sources(room, ctx, text: str) -> list[dict]:
    reply, events = ask_stream(room, ctx, question(room, text))
    assert reply.status == 200, reply.body
    final = next(e for e in events if isinstance(e, dict) and "sources" in e)
    return [s for s in final["sources"] if s["kind"] == "recording"]


def test_the_tutor_cites_what_the_teacher_said_in_an_earlier_class_of_the_course(
    org, livekit, index_queue, lambda_context
):
    recording, segments = recorded_class(org, livekit, lambda_context, index_queue)
    wednesday = open_class(
        org, livekit, lambda_context, room_id="bio-3-wednesday", title="Biology 3", course_id="bio-3"
    )

    cited = recording_sources(wednesday, lambda_context, "What did the teacher say mitochondria do?")

    assert cited, "the earlier class's recording is a source"
    moment = cited[0]
    assert (moment["videoId"], moment["roomId"], moment["title"]) == (
        recording,
        "bio-3-monday",
        "Biology 3, Monday",
    )
    assert abs(moment["startS"] - start_of(segments, SAID)) <= 2 and moment["endS"] > moment["startS"]
    assert moment["text"].startswith(SAID)
    assert f"/v1/cdn/stream/{recording}/master.m3u8?token=" in moment["playbackUrl"]


def test_a_class_of_another_course_or_of_none_does_not_see_the_recording(
    org, livekit, index_queue, lambda_context
):
    recorded_class(org, livekit, lambda_context, index_queue)
    chemistry = open_class(
        org, livekit, lambda_context, room_id="chem-1", title="Chemistry", course_id="chem"
    )
    loose = open_class(org, livekit, lambda_context, room_id="drop-in", title="Drop-in help")

    asked = "What did the teacher say mitochondria do?"
    assert recording_sources(chemistry, lambda_context, asked) == []
    assert recording_sources(loose, lambda_context, asked) == []


def summarize(room, ctx) -> dict:
    from ai_tutor.handler import handler
    from support import call
    from tutor_support import tutor_event
    from verriflo.secrets import get_secret
    from verriflo.settings import secret_settings

    secret = {"X-Dispatch-Secret": get_secret(secret_settings().dispatch_secret_name)}
    body = {"orgId": room.org.id, "roomId": room.room_id}
    reply = call(handler, tutor_event("summarize", secret, body), ctx)
    assert reply.status == 200, reply.body
    return call(handler, tutor_event("summary", room.headers, room_id=room.room_id), ctx).data


def test_the_class_summary_says_what_was_taught_once_the_recording_is_transcribed(
    org, livekit, index_queue, lambda_context
):
    monday = open_class(
        org, livekit, lambda_context, room_id="bio-3-monday", title="Biology 3", course_id="bio-3"
    )
    end_class(monday, lambda_context)
    before = summarize(monday, lambda_context)
    assert before["state"] == "ready" and before["taught"] == []  # captions come after the class

    recording = video(org.id, title="Biology 3, Monday", kind="recording", room_id="bio-3-monday")
    segments = timed(lecture({44: SAID}))
    put_transcript(
        org.id, recording, segments, title="Biology 3, Monday", kind="recording", room_id="bio-3-monday"
    )
    captions_ready(org.id, recording, kind="recording", room_id="bio-3-monday")
    index_all(index_queue, lambda_context)
    after = summarize(monday, lambda_context)

    taught = after["taught"]
    assert 1 <= len(taught) <= 5
    assert [m["startS"] for m in taught] == sorted(m["startS"] for m in taught)
    spoken = " ".join(s["text"] for s in segments)
    assert all(m["videoId"] == recording and m["text"] in spoken for m in taught)
    assert all(f"/v1/cdn/stream/{recording}/master.m3u8?token=" in m["playbackUrl"] for m in taught)
    assert after["summary"] == before["summary"]  # the stored summary stays; `taught` is read with it


def test_a_summary_written_after_the_transcript_quotes_what_was_taught(
    org, livekit, index_queue, lambda_context
):
    recorded_class(org, livekit, lambda_context, index_queue)
    from tutor_support import Classroom

    monday = Classroom(org=org, room_id="bio-3-monday", teacher_token="", student_token="", livekit=livekit)
    written = summarize(monday, lambda_context)
    assert "What was taught (from the class recording): " in written["summary"]
    assert written["taught"][0]["text"][:40] in written["summary"]
