"""Transcripts you can search: each video's transcript cut into time-coded passages, embedded, and
searched across the org's library down to the sentence where the moment starts.

Indexing (`index_video`, run by the consumer of `video.captions_ready` and `video.deleted`) reads
the video's current transcript, groups its sentences into passages of about `passage_min_s` to
`passage_max_s` seconds, embeds each passage and each sentence, writes them pending and then swaps
them in (`video_store.install`), once per transcript version: any step may fail and be retried,
and the same event twice, or an older event after a newer one, changes nothing. A transcript that is
gone (the video was deleted) removes the video from the index.

Search keeps, per org, an in-memory float32 matrix of the passage vectors, reloaded only when the
org's index version changes (one small read per search checks it), as knowledge bases do. A query is
one embedding and one matrix-vector product over the org's passages; the best passages are then
placed: the sentence of the passage closest to the query gives the moment's start, so a phrase is
found within the sentence where it is spoken, not at the start of a 30-second passage.

One module a little past 500 lines on purpose: indexing and search share the passage layout, the
per-org matrix cache and the index version that invalidates it; apart, each half would have to know
the other's internals (`video_store` already holds every driver call).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pydantic import Field
from verriflo.models import ApiModel

from verriflo_ai import video_store
from verriflo_ai.video_store import IndexedVideo, PassageRow, Segment, Transcript

if TYPE_CHECKING:
    import numpy as np

    from verriflo_ai.providers import Passage as Passage_

PASSAGE_MIN_S = 20.0
PASSAGE_MAX_S = 40.0


@dataclass(frozen=True, slots=True)
class Passage:
    """Consecutive sentences of a transcript, about 20-40 s of speech."""

    ordinal: int
    start_s: float
    end_s: float
    segments: tuple[Segment, ...]

    @property
    def text(self) -> str:
        """The passage's sentences as one text."""
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())


def passages(
    segments: list[Segment], min_s: float = PASSAGE_MIN_S, max_s: float = PASSAGE_MAX_S
) -> list[Passage]:
    """Sentences grouped in time order into passages of `min_s` to `max_s` seconds where the
    sentences allow it: a passage closes once it is `min_s` long and the next sentence would take it
    past `max_s`; a sentence longer than `max_s` is a passage of its own; a short tail joins the
    passage before it when they fit in `max_s` together, else the two share their sentences evenly."""
    spoken = sorted((s for s in segments if s.text.strip()), key=lambda s: (s.start_s, s.end_s))
    groups: list[list[Segment]] = []
    for segment in spoken:
        current = groups[-1] if groups else None
        if current is None:
            groups.append([segment])
            continue
        length = current[-1].end_s - current[0].start_s
        if length >= max_s or (length >= min_s and segment.end_s - current[0].start_s > max_s):
            groups.append([segment])
        else:
            current.append(segment)
    if len(groups) > 1 and _length(groups[-1]) < min_s:
        # A short tail joins the passage before it, or the two are split again more evenly.
        tail = groups.pop()
        both = groups.pop() + tail
        groups.extend(_halves(both, max_s))
    return [
        Passage(ordinal=i, start_s=g[0].start_s, end_s=max(s.end_s for s in g), segments=tuple(g))
        for i, g in enumerate(groups)
    ]


def _length(group: list[Segment]) -> float:
    return max(s.end_s for s in group) - group[0].start_s


def _halves(group: list[Segment], max_s: float) -> list[list[Segment]]:
    """`group` whole when it fits in `max_s`, else cut where its two parts are closest in length."""
    if _length(group) <= max_s:
        return [group]
    cut = min(range(1, len(group)), key=lambda k: abs(_length(group[:k]) - _length(group[k:])))
    return [group[:cut], group[cut:]]


def stamp(transcript: Transcript) -> str:
    """The transcript's version as a sortable text (its `updatedAt`, UTC, to the microsecond)."""
    at = transcript.updated_at
    if at.tzinfo is not None:
        at = at.astimezone(UTC).replace(tzinfo=None)
    return at.strftime("%Y%m%dT%H%M%S%f")


def _embed(texts: list[str]) -> np.ndarray:
    from verriflo.errors import UpstreamError

    from verriflo_ai.embeddings import embedder
    from verriflo_ai.providers import ProviderError

    try:
        return embedder().embed(texts)
    except ProviderError as exc:
        raise UpstreamError(str(exc)) from exc


def _rows(transcript: Transcript, version: str, found: list[Passage]) -> list[PassageRow]:
    """The passages as stored: each with its vector and its sentences' vectors."""
    passage_vectors = _embed([p.text for p in found])
    sentence_vectors = _embed([s.text for p in found for s in p.segments])
    rows, offset = [], 0
    for i, passage in enumerate(found):
        count = len(passage.segments)
        rows.append(
            PassageRow(
                _id=f"{transcript.video_id}:{version}:{passage.ordinal}",
                orgId=transcript.org_id,
                videoId=transcript.video_id,
                stamp=version,
                ordinal=passage.ordinal,
                startS=passage.start_s,
                endS=passage.end_s,
                text=passage.text,
                vector=passage_vectors[i].tobytes(),
                segments=list(passage.segments),
                sentenceVectors=sentence_vectors[offset : offset + count].tobytes(),
            )
        )
        offset += count
    return rows


def index_video(org_id: str, video_id: str, at: datetime | None = None) -> str:
    """Bring the video's index in line with its transcript; safe to repeat at any point.

    Returns `installed` (this call indexed the current transcript), `done` (it already was),
    `stale` (a newer transcript got there first), `removed` (no transcript: the video's passages
    are gone) or `empty` (a transcript without speech: nothing to search, any older index removed).
    A transient failure (database, embedding service) raises, so the queue delivers it again."""
    from verriflo.orgs import now

    transcript = video_store.get_transcript(org_id, video_id)
    if transcript is None:
        video_store.remove(org_id, video_id)
        return "removed"
    version = stamp(transcript)
    indexed = video_store.get_indexed(org_id, video_id)
    if indexed is not None and indexed.stamp >= version:
        return "done" if indexed.stamp == version else "stale"
    found = passages(transcript.segments)
    if not found:
        video_store.remove(org_id, video_id)
        return "empty"
    video_store.write_pending(_rows(transcript, version, found))
    return video_store.install(transcript, version, len(found), at or now())


def remove_video(org_id: str, video_id: str) -> bool:
    """Drop a deleted video from the index and from the org's knowledge bases (harmless when it was
    never there); True when the index had it."""
    removed = video_store.remove(org_id, video_id)
    video_store.forget_video_in_bases(org_id, video_id)
    return removed


# --- search ---------------------------------------------------------------------------------------


@dataclass
class _Index:
    version: int
    matrix: np.ndarray
    ids: list[str]  # passage ids
    meta: list[tuple[str, float, float, str]]  # (videoId, startS, endS, text)
    videos: dict[str, IndexedVideo]  # how each video is shown (title, kind, room)
    rows_of: dict[str, list[int]]  # each video's rows in the matrix


class _IndexCache:
    """Per-org passage matrices, checked against the org's index version (a bounded LRU)."""

    def __init__(self, entries: int = 16) -> None:
        self._entries: OrderedDict[str, _Index] = OrderedDict()
        self._size = entries
        self._lock = threading.Lock()

    def get(self, org_id: str, version: int) -> _Index:
        with self._lock:
            hit = self._entries.get(org_id)
            if hit is not None and hit.version == version:
                self._entries.move_to_end(org_id)
                return hit
        index = _load(org_id, version)
        with self._lock:
            self._entries[org_id] = index
            self._entries.move_to_end(org_id)
            while len(self._entries) > self._size:
                self._entries.popitem(last=False)
        return index

    def forget(self, org_id: str) -> None:
        with self._lock:
            self._entries.pop(org_id, None)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


_cache = _IndexCache()


def clear_index_cache() -> None:
    """Forget every in-memory index (tests start on fresh databases)."""
    _cache.clear()


def _matrix(blobs: list[bytes]) -> np.ndarray:
    import numpy as np

    from verriflo_ai.embeddings import embedder

    if not blobs:
        return np.zeros((0, embedder().dimension), dtype=np.float32)
    return np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(blobs), -1)


def _load(org_id: str, version: int) -> _Index:
    ids, meta, blobs = [], [], []
    for row in video_store.iter_passages(org_id):
        ids.append(row["_id"])
        meta.append((row["videoId"], float(row["startS"]), float(row["endS"]), row["text"]))
        blobs.append(bytes(row["vector"]))
    videos = {v.video_id: v for v in video_store.indexed_videos(org_id)}
    rows_of: dict[str, list[int]] = {}
    for row, (video_id, *_rest) in enumerate(meta):
        rows_of.setdefault(video_id, []).append(row)
    return _Index(version=version, matrix=_matrix(blobs), ids=ids, meta=meta, videos=videos, rows_of=rows_of)


@dataclass(frozen=True, slots=True)
class Moment:
    """Where in a video a query is answered: from the sentence closest to it to its passage's end."""

    video_id: str
    start_s: float
    end_s: float
    text: str
    score: float
    passage_id: str
    title: str
    kind: str
    room_id: str | None


def _place(
    org_id: str, hits: list[tuple[str, float, int]], index: _Index, vector: np.ndarray
) -> list[Moment]:
    """Each hit (passage id, score, row) as a moment starting at its sentence closest to the query."""
    import numpy as np

    found = video_store.sentences(org_id, [h[0] for h in hits])
    moments = []
    for passage_id, score, row in hits:
        video_id, start_s, end_s, text = index.meta[row]
        segments, blob = found.get(passage_id, ([], b""))
        if segments and blob:
            sentence_scores = np.frombuffer(blob, dtype=np.float32).reshape(len(segments), -1) @ vector
            best = int(np.argmax(sentence_scores))
            start_s = segments[best].start_s
            text = " ".join(s.text.strip() for s in segments[best:] if s.text.strip())
            score = max(score, float(sentence_scores[best]))
        shown = index.videos.get(video_id)
        moments.append(
            Moment(
                video_id,
                start_s,
                end_s,
                text,
                score,
                passage_id,
                title=shown.title if shown else "",
                kind=shown.kind if shown else "upload",
                room_id=shown.room_id if shown else None,
            )
        )
    return moments


def search(
    org_id: str,
    query: str,
    *,
    limit: int = 10,
    video_ids: set[str] | None = None,
    kinds: set[str] | None = None,
    min_score: float | None = None,
    query_vector: np.ndarray | None = None,
    per_video: int = 3,
) -> list[Moment]:
    """The org's moments most similar to `query`, best first: at most `per_video` moments of each
    video and `limit` videos (only `video_ids`, only those of `kinds`, when given), above the
    threshold (AI_MIN_SCORE)."""
    import numpy as np

    from verriflo_ai.settings import ai_settings

    threshold = ai_settings().min_score if min_score is None else min_score
    index = _cache.get(org_id, video_store.version(org_id))
    if not index.ids or not query.strip():
        return []
    vector = _embed([query])[0] if query_vector is None else query_vector
    scores = index.matrix @ vector
    if video_ids is not None or kinds is not None:
        # Only the named videos (or kinds) compete, however many better passages other videos have.
        allowed = [
            row
            for video_id, rows in index.rows_of.items()
            if (video_ids is None or video_id in video_ids)
            and (kinds is None or (shown := index.videos.get(video_id)) is None or shown.kind in kinds)
            for row in rows
        ]
        mask = np.full(len(scores), -np.inf, dtype=np.float32)
        mask[allowed] = 0.0
        scores = scores + mask
    # Enough candidates for `limit` videos with a few moments each, picked without a full sort.
    k = min(len(scores), max(limit * per_video * 4, 32))
    best = np.argpartition(-scores, k - 1)[:k]
    best = best[np.argsort(-scores[best])]
    hits: list[tuple[str, float, int]] = []
    taken: dict[str, int] = {}
    for row in best:
        score = float(scores[row])
        if score < threshold:
            break
        video_id = index.meta[int(row)][0]
        if video_id not in taken and len(taken) >= limit:
            continue
        if taken.get(video_id, 0) >= per_video:
            continue
        taken[video_id] = taken.get(video_id, 0) + 1
        hits.append((index.ids[int(row)], score, int(row)))
    moments = _place(org_id, hits, index, vector)
    moments.sort(key=lambda m: m.score, reverse=True)
    return moments


def forget_index(org_id: str) -> None:
    """Drop the org's in-memory matrix (after a change this process made itself)."""
    _cache.forget(org_id)


# --- videos in knowledge bases --------------------------------------------------------------------


class KnowledgeBaseVideo(ApiModel):
    """A video in a knowledge base: its transcript's passages answer the base's questions, cited with
    the moment (`videoId`, `startS`, `endS`, `playbackUrl`)."""

    video_id: str
    knowledge_base_id: str
    title: str
    transcribed: bool = Field(description="its transcript is indexed (until then it adds nothing)")
    passages: int = Field(description="passages of its transcript in the index")
    added_at: datetime


class KnowledgeBaseVideoList(ApiModel):
    """A knowledge base's videos, oldest first."""

    videos: list[KnowledgeBaseVideo] = Field(default_factory=list)


def _shown(entry: video_store.KbVideo, indexed: IndexedVideo | None) -> KnowledgeBaseVideo:
    return KnowledgeBaseVideo(
        video_id=entry.video_id,
        knowledge_base_id=entry.kb_id,
        title=indexed.title if indexed and indexed.title else entry.title,
        transcribed=indexed is not None,
        passages=indexed.passages if indexed else 0,
        added_at=entry.added_at,
    )


def add_to_base(org_id: str, kb_id: str, video_id: str, title: str) -> tuple[KnowledgeBaseVideo, bool]:
    """Put one of the org's videos (already checked by the caller) in one of its bases; the entry and
    whether it is new (adding it twice is one entry)."""
    from verriflo.orgs import now

    from verriflo_ai import kb_store

    kb_store.get_base(org_id, kb_id)  # 404 for another org's base
    entry = video_store.KbVideo(
        _id=f"{kb_id}:{video_id}", orgId=org_id, kbId=kb_id, videoId=video_id, title=title, addedAt=now()
    )
    created = video_store.add_kb_video(entry)
    if not created:
        entry = next(v for v in video_store.kb_videos(org_id, [kb_id]) if v.video_id == video_id)
    return _shown(entry, video_store.get_indexed(org_id, video_id)), created


def base_videos(org_id: str, kb_id: str) -> KnowledgeBaseVideoList:
    """The videos of one of the org's bases."""
    from verriflo_ai import kb_store

    kb_store.get_base(org_id, kb_id)
    entries = video_store.kb_videos(org_id, [kb_id])
    indexed = {v.video_id: v for v in video_store.indexed_videos(org_id, [e.video_id for e in entries])}
    return KnowledgeBaseVideoList(videos=[_shown(e, indexed.get(e.video_id)) for e in entries])


def remove_from_base(org_id: str, kb_id: str, video_id: str) -> None:
    """Take a video out of one of the org's bases (NotFound when it is not in it)."""
    from verriflo.errors import NotFound

    from verriflo_ai import kb_store

    kb_store.get_base(org_id, kb_id)
    if not video_store.remove_kb_video(org_id, kb_id, video_id):
        raise NotFound(f"Video '{video_id}' is not in knowledge base '{kb_id}'.")


def _passages(moments: list[Moment], kb_of: dict[str, str]) -> list[Passage_]:
    from verriflo_ai.providers import Passage as RetrievalPassage

    return [
        RetrievalPassage(
            text=m.text,
            score=m.score,
            knowledge_base_id=kb_of.get(m.video_id, ""),
            document_id=m.video_id,
            title=m.title,
            chunk=int(m.passage_id.rsplit(":", 1)[1]),
            video_id=m.video_id,
            start_s=m.start_s,
            end_s=m.end_s,
        )
        for m in moments
    ]


def base_passages(
    org_id: str, kb_ids: list[str], query: str, vector: np.ndarray, top_k: int, min_score: float
) -> list[Passage_]:
    """The best moments of the named bases' videos as retrieval passages (with the video and its
    `startS`/`endS`), for knowledge-base search."""
    entries = video_store.kb_videos(org_id, kb_ids)
    if not entries:
        return []
    kb_of = {e.video_id: e.kb_id for e in entries}
    found = search(
        org_id,
        query,
        limit=top_k,
        video_ids=set(kb_of),
        min_score=min_score,
        query_vector=vector,
        per_video=2,
    )
    return _passages(found[:top_k], kb_of)


def recording_passages(
    org_id: str, room_ids: list[str], query: str, vector: np.ndarray, top_k: int, min_score: float
) -> list[Passage_]:
    """The best moments of the transcribed recordings of the named classes (rooms), as retrieval
    passages: what the teacher said, and where."""
    recorded = {v.video_id for v in video_store.indexed_videos(org_id, room_ids=room_ids)}
    if not recorded:
        return []
    found = search(org_id, query, limit=top_k, video_ids=recorded, min_score=min_score, query_vector=vector)
    return _passages(found[:top_k], {})


def moment_urls(org_id: str, moments: list[tuple[str, float]]) -> dict[tuple[str, float], str]:
    """Signed playback URLs starting at each (videoId, startS) of the org's playable videos, under
    PUBLIC_BASE_URL (absolute) when it is set, else as a path under the API's base URL."""
    from verriflo import media, playback

    if not moments:
        return {}
    base = (media.media_settings().public_base_url or "").rstrip("/")
    stored = media.videos_by_id(org_id, list(dict.fromkeys(v for v, _ in moments)))
    found = {}
    for video_id, start_s in moments:
        video = stored.get(video_id)
        url = playback.at_moment(playback.master_url(video, base), start_s) if video else None
        if url is not None:
            found[(video_id, start_s)] = url
    return found


def recorded_in(org_id: str, video_ids: list[str]) -> dict[str, str]:
    """The class (roomId) each of the named recordings was made in."""
    if not video_ids:
        return {}
    return {v.video_id: v.room_id for v in video_store.indexed_videos(org_id, video_ids) if v.room_id}


def key_moments(org_id: str, room_id: str, count: int = 5) -> list[Moment]:
    """What was taught in a class, from its recordings' transcripts: the passages that best cover
    the whole (closest to the recording's overall meaning, each unlike those already chosen), in time
    order. Empty until a recording of the room is transcribed."""
    import numpy as np

    videos = {v.video_id: v for v in video_store.indexed_videos(org_id, room_ids=[room_id])}
    if not videos:
        return []
    rows = list(video_store.iter_passages(org_id, list(videos)))
    if not rows:
        return []
    matrix = _matrix([bytes(r["vector"]) for r in rows])
    centre = matrix.mean(axis=0)
    centre /= max(float(np.linalg.norm(centre)), 1e-12)
    relevance = matrix @ centre
    chosen: list[int] = []
    while len(chosen) < min(count, len(rows)):
        # Maximal marginal relevance: central to the class, and not a repeat of what is chosen.
        redundancy = (matrix @ matrix[chosen].T).max(axis=1) if chosen else np.zeros(len(rows))
        score = 0.5 * relevance - 0.5 * redundancy
        score[chosen] = -np.inf
        chosen.append(int(np.argmax(score)))
    chosen.sort(key=lambda i: (rows[i]["videoId"], rows[i]["startS"]))
    return [
        Moment(
            rows[i]["videoId"],
            float(rows[i]["startS"]),
            float(rows[i]["endS"]),
            rows[i]["text"],
            float(relevance[i]),
            rows[i]["_id"],
            title=videos[rows[i]["videoId"]].title,
            kind=videos[rows[i]["videoId"]].kind,
            room_id=room_id,
        )
        for i in chosen
    ]
