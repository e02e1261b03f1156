"""Starting a video's captions beside its transcode: the captions state goes `pending` (or `none`
for a video without an audio track) and the captions worker is invoked asynchronously with the
video's id. The only module of the transcoder that calls the captions worker (Lambda)."""

from __future__ import annotations

import json

from verriflo import aws, transcripts
from verriflo.media import Video
from verriflo.observability import logger


def start(video: Video, has_audio: bool) -> None:
    """Captions begin as the transcode does; a failure to start them never stops the transcode
    (they end `failed` with the reason, the video plays without them)."""
    from botocore.exceptions import BotoCoreError, ClientError

    if not transcripts.start(video, has_audio=has_audio):
        return  # no audio (`none`), or a retry of a transcode whose captions already started
    name = transcripts.captions_settings().function_name
    if not name:
        return  # no worker in this deployment (tests run it in-process)
    try:
        aws.client("lambda").invoke(
            FunctionName=name,
            InvocationType="Event",
            Payload=json.dumps({"orgId": video.org_id, "videoId": video.id}).encode(),
        )
    except (BotoCoreError, ClientError) as exc:
        logger.warning("transcode.captions_not_started", extra={"error": str(exc)[:300]})
        transcripts.give_up(video, "Captioning could not be started; upload a .vtt instead.")
