"""WebVTT for captions without I/O: owners' files parsed strictly, cues written back escaped, cut
into HLS subtitle segments on the video's clock; timed words joined into sentences."""

from __future__ import annotations

import pytest
from verriflo import webvtt
from verriflo.errors import ValidationFailed
from verriflo_ai.speech import Segment, aws_items_to_segments, sentences


def test_a_file_with_header_notes_styles_ids_and_settings_parses_to_its_cues_in_time_order():
    text = (
        "\ufeffWEBVTT - lesson 1\nKind: captions\n\nSTYLE\n::cue { color: yellow }\n\n"
        "NOTE a note\nover two lines\n\n"
        "intro\n00:00:05.000 --> 00:00:07.250 line:0 align:start\nSecond <i>line</i>\n\n"
        "01:00:00.000 --> 01:00:01.000\nlate\n\n"
        "00:00.500 --> 00:02.000\nFirst\ntwo lines\n"
    )
    cues = webvtt.parse(text.replace("\n", "\r\n"))
    assert cues == [
        webvtt.Cue(0.5, 2.0, "First\ntwo lines"),
        webvtt.Cue(5.0, 7.25, "Second <i>line</i>"),
        webvtt.Cue(3600.0, 3601.0, "late"),
    ]
    assert webvtt.plain(cues[0].text) == "First two lines" and webvtt.plain(cues[1].text) == "Second line"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("", "starts with the line 'WEBVTT'"),
        ("WEBVTTX\n\n00:00:00.000 --> 00:00:01.000\nhi\n", "WEBVTT"),
        ("WEBVTT\n\nhello\nworld\n", "line 3: expected a cue timing"),
        ("WEBVTT\n\n00:00:00.000 --> 00:00:60.000\nhi\n", "line 3: a cue timing"),
        ("WEBVTT\n\n00:00:02.000 --> 00:00:02.000\nhi\n", "end after it starts"),
        ("WEBVTT\n\n" + "00:00:00.000 --> 00:00:01.000\n" + "x" * 1001 + "\n", "1000 characters"),
        ("WEBVTT\n\nNOTE nothing else\n", "no cues"),
    ],
)
def test_what_is_not_webvtt_is_refused_naming_the_line(text, says):
    with pytest.raises(ValidationFailed, match=says):
        webvtt.parse(text)


def test_transcript_text_is_escaped_so_it_can_never_become_markup():
    cues = webvtt.from_transcript([(0.0, 1.0, "a <b> & c --> d"), (1.0, 2.0, "   ")])
    written = webvtt.render(cues)
    assert webvtt.parse(written) == cues and len(cues) == 1
    assert webvtt.plain(cues[0].text) == "a <b> & c --> d"


def test_segments_cover_the_video_each_with_the_timestamp_map_and_the_cues_it_overlaps():
    cues = [webvtt.Cue(0.5, 3.0, "one"), webvtt.Cue(3.5, 9.0, "two"), webvtt.Cue(9.5, 10.0, "three")]
    playlist, files = webvtt.segments(cues, 10.2, 4, mpegts=138000)
    assert [name for name, _ in files] == ["sub_00000.vtt", "sub_00001.vtt", "sub_00002.vtt"]
    assert playlist.splitlines() == [
        "#EXTM3U", "#EXT-X-VERSION:3", "#EXT-X-TARGETDURATION:4", "#EXT-X-MEDIA-SEQUENCE:0",
        "#EXT-X-PLAYLIST-TYPE:VOD", "#EXTINF:4.000,", "sub_00000.vtt", "#EXTINF:4.000,", "sub_00001.vtt",
        "#EXTINF:2.200,", "sub_00002.vtt", "#EXT-X-ENDLIST",
    ]  # fmt: skip
    parsed = [webvtt.parse(text) for _, text in files]
    assert [[c.text for c in p] for p in parsed] == [["one", "two"], ["two"], ["two", "three"]]
    assert all(t.startswith("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:138000,LOCAL:00:00:00.000\n") for _, t in files)


def test_timed_words_become_sentences_cut_when_too_long():
    words = [
        Segment(i * 0.3, i * 0.3 + 0.25, w) for i, w in enumerate("Hello there. How are you? Fine".split())
    ]
    assert sentences(words) == [
        Segment(0.0, 0.55, "Hello there."),
        Segment(0.6, 1.45, "How are you?"),
        Segment(1.5, 1.75, "Fine"),
    ]
    long = [Segment(i * 0.5, i * 0.5 + 0.4, "word") for i in range(40)]
    cut = sentences(long, max_chars=120, max_s=8.0)
    assert all(s.end_s - s.start_s <= 8.0 and len(s.text) <= 120 for s in cut)
    assert " ".join(s.text for s in cut).split() == ["word"] * 40


def test_amazon_transcribe_items_become_timed_sentences_with_their_punctuation():
    result = {
        "results": {
            "items": [
                {
                    "type": "pronunciation",
                    "start_time": "0.1",
                    "end_time": "0.5",
                    "alternatives": [{"content": "Hi"}],
                },
                {"type": "punctuation", "alternatives": [{"content": "."}]},
                {
                    "type": "pronunciation",
                    "start_time": "1.0",
                    "end_time": "1.4",
                    "alternatives": [{"content": "Bye"}],
                },
            ]
        }
    }
    assert aws_items_to_segments(result) == [Segment(0.1, 0.5, "Hi."), Segment(1.0, 1.4, "Bye")]
