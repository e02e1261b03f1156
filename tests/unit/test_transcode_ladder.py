"""The pipeline's pure parts: ladder planning (never upscale), the one-decode FFmpeg command,
chunk planning, playlist joining and master playlists, and which upload keys are ours."""

from __future__ import annotations

import pytest
from transcode import pipeline
from transcode.pipeline import Probe
from verriflo import media
from verriflo.errors import BadRequest


def source(width: int, height: int, audio: bool = True) -> Probe:
    return Probe(
        duration_s=60,
        width=width,
        height=height,
        fps=30,
        has_audio=audio,
        format_name="mov",
        video_codec="h264",
    )


@pytest.mark.parametrize(
    "size,expected",
    [
        ((3840, 2160), ["360p", "540p", "720p", "1080p"]),
        ((1920, 1080), ["360p", "540p", "720p", "1080p"]),
        ((1280, 720), ["360p", "540p", "720p"]),
        ((960, 540), ["360p", "540p"]),
        ((854, 480), ["360p"]),
        ((426, 240), ["240p"]),
        ((1080, 1920), ["360p", "540p", "720p", "1080p"]),
    ],
)
def test_ladder_suits_the_source_and_never_upscales(size, expected):
    rungs = pipeline.plan_ladder(source(*size))

    assert [r.name for r in rungs] == expected
    assert all(r.height <= size[1] and r.width <= size[0] for r in rungs)
    assert all(r.width % 2 == 0 and r.height % 2 == 0 for r in rungs)
    assert [r.video_bps for r in rungs] == sorted(r.video_bps for r in rungs)


def test_aspect_ratio_is_kept():
    [low, *_] = pipeline.plan_ladder(source(1920, 800))
    assert (low.width, low.height) == (864, 360)


def test_one_ffmpeg_decode_feeds_every_rendition(tmp_path):
    rungs = pipeline.plan_ladder(source(1280, 720))
    cmd = pipeline.encode_command("in.mp4", tmp_path, rungs, source(1280, 720))

    assert cmd.count("-i") == 1
    graph = cmd[cmd.index("-filter_complex") + 1]
    assert graph.startswith("[0:v:0]split=3") and graph.count("scale=") == 3
    assert cmd[cmd.index("-c:v") + 1] == "libx264" and cmd[cmd.index("-preset") + 1] == "veryfast"
    assert cmd[cmd.index("-c:a") + 1] == "aac"
    assert cmd[cmd.index("-var_stream_map") + 1] == "v:0,a:0,name:360p v:1,a:1,name:540p v:2,a:2,name:720p"
    assert "pipe:1" in cmd and cmd[cmd.index("-f", cmd.index("-c:a")) + 1] == "hls"


def test_poster_and_thumbnails_come_from_the_same_run(tmp_path):
    src = source(1280, 720)
    cmd = pipeline.encode_command("in.mp4", tmp_path, pipeline.plan_ladder(src)[:2], src, stills_dir=tmp_path)

    assert cmd.count("-i") == 1
    graph = cmd[cmd.index("-filter_complex") + 1]
    # two rungs plus the poster and thumbnail branches of one decode
    assert graph.startswith("[0:v:0]split=4") and graph.count("select=") == 2
    assert str(tmp_path / "poster.jpg") in cmd and str(tmp_path / "thumbs" / "thumb_%02d.jpg") in cmd
    assert cmd[cmd.index("-hls_playlist_type") + 1] == "vod"


def test_early_publication_writes_event_playlists_that_become_vod_once_ended(tmp_path):
    src = source(640, 360)
    cmd = pipeline.encode_command("in.mp4", tmp_path, pipeline.plan_ladder(src), src, event=True)
    assert cmd[cmd.index("-hls_playlist_type") + 1] == "event"
    ended = "#EXTM3U\n#EXT-X-PLAYLIST-TYPE:EVENT\n#EXTINF:4.0,\nseg_00000.ts\n#EXT-X-ENDLIST\n"
    assert "#EXT-X-PLAYLIST-TYPE:VOD" in pipeline.as_vod(ended) and "EVENT" not in pipeline.as_vod(ended)
    with pytest.raises(pipeline.EncodeFailed):
        pipeline.as_vod(ended.replace("#EXT-X-ENDLIST\n", ""))


def test_silent_source_maps_no_audio(tmp_path):
    cmd = pipeline.encode_command(
        "in.mp4", tmp_path, pipeline.plan_ladder(source(640, 360, audio=False)), source(640, 360, audio=False)
    )
    assert "-c:a" not in cmd and cmd[cmd.index("-var_stream_map") + 1] == "v:0,name:360p"
    assert 'CODECS="avc1.640028"' in pipeline.master_playlist(pipeline.plan_ladder(source(640, 360)), False)


def test_master_lists_rungs_lowest_first_with_bandwidth_and_resolution():
    text = pipeline.master_playlist(pipeline.plan_ladder(source(1280, 720)), True)
    lines = text.splitlines()
    assert lines[0] == "#EXTM3U"
    assert [line for line in lines if not line.startswith("#")] == [
        "360p/index.m3u8",
        "540p/index.m3u8",
        "720p/index.m3u8",
    ]
    assert "BANDWIDTH=928000" in text and "RESOLUTION=1280x720" in text


@pytest.mark.parametrize(
    "duration,length,starts",
    [
        (130, 60, [0, 60, 120]),  # a 10 s tail is a chunk of its own
        (121, 60, [0, 60]),  # a 1 s sliver is folded into the last chunk
        (3600, 120, list(range(0, 3600, 120))),
        (59, 120, [0]),
    ],
)
def test_chunks_cover_the_source_on_segment_boundaries(duration, length, starts):
    chunks = pipeline.plan_chunks(duration, length)
    assert [c[1] for c in chunks] == starts
    assert abs(sum(c[2] for c in chunks) - duration) < 1e-6
    assert all(c[1] % pipeline.SEGMENT_S == 0 for c in chunks)


def test_chunk_playlists_join_into_one_vod_playlist():
    a = (
        "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4.000000,\nc0000_00000.ts\n"
        "#EXTINF:4.000000,\nc0000_00001.ts\n#EXT-X-ENDLIST\n"
    )
    b = "#EXTM3U\n#EXT-X-TARGETDURATION:3\n#EXTINF:2.500000,\nc0001_00000.ts\n#EXT-X-ENDLIST\n"

    joined = pipeline.join_playlists([a, b])

    assert [line for line in joined.splitlines() if line.endswith(".ts")] == [
        "c0000_00000.ts",
        "c0000_00001.ts",
        "c0001_00000.ts",
    ]
    assert "#EXT-X-TARGETDURATION:4" in joined and joined.endswith("#EXT-X-ENDLIST\n")
    assert joined.count("#EXT-X-ENDLIST") == 1 and "#EXT-X-PLAYLIST-TYPE:VOD" in joined

    # published early: an EVENT playlist of the leading chunks, which later only grows and ends
    growing = pipeline.join_playlists([a], event=True, ended=False)
    final = pipeline.join_playlists([a, b], event=True)
    assert "#EXT-X-PLAYLIST-TYPE:EVENT" in growing and "#EXT-X-ENDLIST" not in growing
    assert final.startswith(growing) and final.endswith("#EXT-X-ENDLIST\n")


@pytest.mark.parametrize(
    "key",
    [
        "org_0123456789abcdef01234567/vid_0123456789abcdef01234567/source",
        "org_0123456789abcdef01234567/rec_0123456789abcdef01234567/source",
    ],
)
def test_our_upload_keys_parse(key):
    assert media.parse_source_key(key) == tuple(key.split("/")[:2])


@pytest.mark.parametrize(
    "key",
    [
        "org_0123456789abcdef01234567/../vid_0123456789abcdef01234567/source",
        "org_0123456789abcdef01234567/vid_0123456789abcdef01234567/source/..",
        "org_0123456789abcdef01234567/vid_0123456789abcdef01234567/source.mp4",
        "org_0123456789abcdef01234567/vid_0123456789ABCDEF01234567/source",
        "org_0123456789abcdef01234567/vid_0123456789abcdef01234567 /source",
        "/org_0123456789abcdef01234567/vid_0123456789abcdef01234567/source",
        "org_0123456789abcdef01234567/vid_0123456789abcdef01234567/source\n",
        "org_0123456789abcdef01234567/vid_0123456789abcdef01234567/s\u043eurce",
        "",
    ],
)
def test_any_other_key_is_refused(key):
    with pytest.raises(BadRequest):
        media.parse_source_key(key)
