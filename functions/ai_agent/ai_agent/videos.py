"""Videos in knowledge bases: a base names the org's videos, and their transcripts' moments answer its
questions beside its documents (`verriflo_ai.video_search`; cited with `videoId`, `startS`, `endS`,
`playbackUrl`). A video is added by reference: its passages follow its transcript (indexed when the
captions are ready, replaced with a new transcript, gone with the video)."""

from __future__ import annotations

from verriflo import media
from verriflo.auth import OrgContext
from verriflo_ai import video_search
from verriflo_ai.video_search import KnowledgeBaseVideo, KnowledgeBaseVideoList


def add(org: OrgContext, kb_id: str, video_id: str) -> tuple[KnowledgeBaseVideo, bool]:
    """Put one of the org's videos or recordings in one of its bases (404 for anyone else's)."""
    video = media.get_video(org.org_id, video_id)
    return video_search.add_to_base(org.org_id, kb_id, video.id, video.title)


def listed(org: OrgContext, kb_id: str) -> KnowledgeBaseVideoList:
    """The videos of one of the org's bases."""
    return video_search.base_videos(org.org_id, kb_id)


def remove(org: OrgContext, kb_id: str, video_id: str) -> None:
    """Take a video out of one of the org's bases."""
    video_search.remove_from_base(org.org_id, kb_id, video_id)
