"""What the scheduled sweep settles (`transcode.sweep`): recordings past their retention, transcodes
that died for good, finished videos whose effects were interrupted, and pending videos whose S3
trigger was lost or spent every retry (dispatched again or failed, at most a few times)."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

from verriflo import media, objects, orgs, outbox
from verriflo.errors import NotFound, ServiceUnavailable
from verriflo.media import Video
from verriflo.observability import logger

from transcode import publish
from transcode.logic import refuse_reason

Dispatch = Callable[[str, str], None]  # (bucket, key): start the transcoder for a stored object


GAVE_UP = "We could not start transcoding this video; please upload it again."


NEVER_ARRIVED = "The upload never arrived before its upload URL expired; create the video again to upload it."


def expire_recordings() -> int:
    """Delete recordings whose retention ran out (scheduled); returns how many."""
    deleted = 0
    for video in media.expired_recordings():
        try:
            media.purge(video)
        except ServiceUnavailable as exc:
            # This one waits for the next sweep; the others, and the sweep's other work, go on.
            logger.warning(
                "recording.expire_failed", extra={"video_id": video.id, "error": exc.message[:300]}
            )
            continue
        logger.info("recording.expired", extra={"video_id": video.id, "org_id": video.org_id})
        deleted += 1
    return deleted


def complete_effects() -> int:
    """Carry out what finished videos imply and their own attempt left undone; returns how many."""
    return outbox.sweep(media.VIDEOS)


def fail_stalled() -> int:
    """Fail videos whose transcode died for good (retries spent, lease long gone); returns how many."""
    stalled = media.stalled()
    for video in stalled:
        publish.failed(video, "Transcoding stopped before it finished; please upload the file again.")
    return len(stalled)


def _fail_unclaimed(video: Video, message: str) -> str:
    failed = outbox.event(
        "video.failed",
        video.org_id,
        publish.event_data(video, status="failed", message=message),
        event_id=f"evt_video_failed_{video.id}_{video.attempt}",
    )
    if media.fail_unclaimed(video.org_id, video.id, message, [failed]):
        outbox.drain(media.VIDEOS, video.id)
        logger.warning("transcode.reconcile_failed", extra={"video_id": video.id, "reason": message})
    return "failed"


def reconcile(video: Video, dispatch: Dispatch, *, at: datetime, immediate: bool = False) -> str:
    """Settle one pending video against its bucket: a stored source is transcoded (started again,
    at most `max_redispatches` times, then failed); an upload that never came is failed once its
    URL has expired. Returns `dispatched`, `failed` or `waiting`; safe to run again at any time (the
    transcoder's claim makes a second start of the same object a no-op)."""
    settings = media.media_settings()
    quiet = at - timedelta(seconds=settings.reconcile_after_s)
    try:
        objects.head(video.source_bucket, video.source_key)
    except NotFound:
        expired = at - timedelta(seconds=settings.upload_url_ttl_s + settings.reconcile_after_s)
        if video.kind == "video" and video.created_at < expired:
            if video.upload_id:
                objects.abort_multipart(video.source_bucket, video.source_key, video.upload_id)
            return _fail_unclaimed(video, NEVER_ARRIVED)
        return "waiting"
    # A failed invocation is known dead: start again now. Otherwise give the last start its time.
    if media.take_redispatch(
        video, most=settings.max_redispatches, quiet_since=at if immediate else quiet, at=at
    ):
        dispatch(video.source_bucket, video.source_key)
        logger.info("transcode.redispatched", extra={"video_id": video.id, "org_id": video.org_id})
        return "dispatched"
    if media.redispatches_spent(video, settings.max_redispatches, quiet_since=quiet):
        return _fail_unclaimed(video, GAVE_UP)
    return "waiting"


def reconcile_pending(dispatch: Dispatch, at: datetime | None = None) -> dict[str, int]:
    """Scheduled: every video pending for longer than `reconcile_after_s`, settled (`reconcile`)."""
    at = at or orgs.now()
    before = at - timedelta(seconds=media.media_settings().reconcile_after_s)
    outcomes = Counter(reconcile(video, dispatch, at=at) for video in media.pending_since(before))
    return {name: outcomes.get(name, 0) for name in ("dispatched", "failed", "waiting")}


def failed_invocations(
    messages: Iterable[tuple[dict[str, Any], str]],
    done: Callable[[str], None],
    dispatch: Dispatch,
    at: datetime | None = None,
) -> int:
    """Consume the transcoder's on-failure destination: each invocation that spent every retry
    names objects whose videos are settled at once; a message is deleted only once handled (a
    crash leaves it to come back). Returns how many messages were handled."""
    at = at or orgs.now()
    handled = 0
    for payload, receipt in messages:
        for record in payload.get("Records") or []:
            s3 = record.get("s3") or {} if isinstance(record, dict) else {}
            bucket = str((s3.get("bucket") or {}).get("name") or "")
            key = unquote_plus(str((s3.get("object") or {}).get("key") or ""))
            found = refuse_reason(bucket, key)
            video = media.find_video(found[1]) if isinstance(found, tuple) else None
            if video is not None and video.status == "pending":
                reconcile(video, dispatch, at=at, immediate=True)
        done(receipt)
        handled += 1
    return handled
