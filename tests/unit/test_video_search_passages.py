"""Transcripts into passages: whole sentences, in time order, about 20-40 s each."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from verriflo_ai.video_search import passages, stamp
from verriflo_ai.video_store import Segment, Transcript


def seg(start: float, end: float, text: str = "A sentence.") -> Segment:
    return Segment(startS=start, endS=end, text=text)


def test_sentences_group_into_passages_of_twenty_to_forty_seconds():
    segments = [seg(i * 6.0, i * 6.0 + 5.5, f"Sentence {i}.") for i in range(50)]  # 5 minutes
    found = passages(segments)
    assert [s.text for p in found for s in p.segments] == [s.text for s in segments]
    for p in found:
        assert 20 <= p.end_s - p.start_s <= 40
        assert (p.start_s, p.end_s) == (p.segments[0].start_s, p.segments[-1].end_s)
    assert [p.ordinal for p in found] == list(range(len(found)))


def test_a_sentence_longer_than_a_passage_stands_alone_and_a_short_tail_joins_the_one_before():
    found = passages([seg(0, 10), seg(10, 22), seg(22, 80, "A long monologue."), seg(80, 84), seg(84, 88)])
    assert [(p.start_s, p.end_s) for p in found] == [(0, 22), (22, 80), (80, 88)]
    tail = passages([seg(0, 12), seg(12, 25), seg(25, 30)])
    assert [(p.start_s, p.end_s) for p in tail] == [(0, 30)]


def test_silence_and_blank_sentences_make_no_passages_and_order_is_by_time():
    assert passages([]) == []
    assert passages([seg(0, 2, "  ")]) == []
    found = passages([seg(5, 7, "second"), seg(0, 2, "first")])
    assert found[0].text == "first second"


def test_the_version_stamp_sorts_as_time_whatever_the_zone():
    base = datetime(2030, 1, 1, 12, tzinfo=UTC)
    zoned = base.astimezone(timezone(timedelta(hours=6)))

    def at(when: datetime) -> Transcript:
        return Transcript(_id="vid_x", orgId="org_x", updatedAt=when)

    assert stamp(at(base)) == stamp(at(zoned)) == stamp(at(base.replace(tzinfo=None)))
    assert (
        stamp(at(base)) < stamp(at(base + timedelta(microseconds=1))) < stamp(at(base + timedelta(days=400)))
    )
