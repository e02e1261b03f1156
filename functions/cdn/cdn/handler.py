"""CDN routes: videos (create with direct upload, list, get, delete, status, url) and the public,
token-checked stream proxy that serves signed HLS playlists."""

# No `from __future__ import annotations` here: Powertools resolves each route's dependencies with
# typing.get_type_hints on every request, and string annotations are re-compiled each time.
from datetime import datetime
from typing import Annotated, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.openapi.params import Query
from verriflo import media, playback
from verriflo.api import PUBLIC, Envelope, Org, create_app, lambda_handler, ok, protected, responses

from cdn import captions, logic, models

app = create_app()
api = protected(app, "cdn")
STREAM_HEADERS = {"Cache-Control": "private, max-age=10", "Access-Control-Allow-Origin": "*"}
# A playlist still growing (the video is playable while it transcodes): players reload it every
# segment, so no cache may hold it.
GROWING_HEADERS = STREAM_HEADERS | {"Cache-Control": "no-cache"}


def base_url() -> str:
    """Where this API is reached from outside (for the stream URLs we hand out)."""
    return playback.base_url(app.current_event)


@api.post(
    "/v1/cdn/videos",
    summary="Create a video and get a direct upload",
    tags=["cdn"],
    responses=responses(models.VideoCreated, 400, 401, 402, 413, 429, 503, status=201),
)
def create_video(body: models.CreateVideo, org: Org) -> Envelope[models.VideoCreated]:
    """A presigned PUT (or multipart upload for large files); the upload starts the transcode."""
    return ok(logic.create_video(org, body), status=201)


@api.post(
    "/v1/cdn/videos/<video_id>/upload/complete",
    summary="Complete a multipart upload",
    tags=["cdn"],
    responses=responses(models.VideoInfo, 400, 401, 404, 409, 429, 503),
)
def complete_upload(video_id: str, body: models.CompleteUpload, org: Org) -> Envelope[models.VideoInfo]:
    """Join the uploaded parts (their ETags in order)."""
    return ok(logic.complete_upload(org, video_id, body))


@api.get(
    "/v1/cdn/videos",
    summary="List videos",
    tags=["cdn"],
    responses=responses(models.VideoList, 400, 401, 429, 503),
)
def list_videos(
    org: Org,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    status: Annotated[media.Status | None, Query()] = None,
    before: Annotated[datetime | None, Query()] = None,
    kind: Annotated[media.PublicKind | None, Query()] = None,
    room_id: Annotated[str | None, Query(alias="roomId", pattern=r"^[A-Za-z0-9_-]{1,100}$")] = None,
) -> Envelope[models.VideoList]:
    """Uploads and class recordings, newest first; `kind=upload|recording`, `roomId` (a room's
    recordings); page with `before`."""
    return ok(logic.list_videos(org, limit=limit, status=status, before=before, kind=kind, room_id=room_id))


@api.get(
    "/v1/cdn/videos/search",
    summary="Search the videos' transcripts",
    tags=["cdn"],
    responses=responses(models.VideoSearchResults, 401, 429, 502, 503),
)
def search_videos(
    org: Org,
    q: Annotated[str, Query(max_length=500, description="what to find, in words")] = "",
    limit: Annotated[int, Query(ge=1, le=50, description="videos at most")] = 10,
    kind: Annotated[Literal["upload", "recording"] | None, Query()] = None,
) -> Envelope[models.VideoSearchResults]:
    """The org's videos and the moments of their transcripts that answer `q` (empty `q`: 400)."""
    return ok(logic.search_videos(org, q, limit=limit, kind=kind, base_url=base_url()))


@api.get(
    "/v1/cdn/videos/<video_id>",
    summary="Get a video",
    tags=["cdn"],
    responses=responses(models.VideoInfo, 401, 404, 429, 503),
)
def get_video(video_id: str, org: Org) -> Envelope[models.VideoInfo]:
    """Status, progress, renditions and sizes of one video."""
    return ok(logic.get_video(org, video_id))


@api.delete(
    "/v1/cdn/videos/<video_id>",
    summary="Delete a video and its media",
    tags=["cdn"],
    responses=responses(models.VideoDeleted, 401, 404, 429, 503),
)
def delete_video(video_id: str, org: Org) -> Envelope[models.VideoDeleted]:
    """Removes the HLS ladder, poster, source file and record."""
    return ok(logic.delete_video(org, video_id))


@api.get(
    "/v1/cdn/videos/<video_id>/status",
    summary="Transcoding status",
    tags=["cdn"],
    responses=responses(models.VideoStatus, 401, 404, 429, 503),
)
def video_status(video_id: str, org: Org) -> Envelope[models.VideoStatus]:
    """`status` and `progress` (0-100)."""
    return ok(logic.status(org, video_id))


@api.get(
    "/v1/cdn/videos/<video_id>/url",
    summary="Signed playback URL",
    tags=["cdn"],
    responses=responses(models.VideoUrl, 401, 404, 429, 503),
)
def video_url(video_id: str, org: Org) -> Envelope[models.VideoUrl]:
    """A signed HLS master playlist URL valid about one hour, once the video is playable."""
    return ok(logic.playback_url(org, video_id, base_url()))


@api.get(
    "/v1/cdn/videos/<video_id>/captions",
    summary="Download a video's captions (.vtt or plain text)",
    tags=["cdn"],
    responses=responses(None, 401, 404, 409, 429, 503),
)
def get_captions(
    video_id: str, org: Org, format: Annotated[Literal["vtt", "txt"], Query()] = "vtt"
) -> Response[str]:
    """The whole WebVTT file (`format=vtt`, default) or the transcript one sentence a line (`txt`);
    409 while the captions are being made, 404 when there are none."""
    content_type, text = captions.download(org, video_id, format)
    name = f'attachment; filename="{video_id}.{format}"'
    return Response(200, content_type, text, headers={"Content-Disposition": name})


@api.get(
    "/v1/cdn/videos/<video_id>/captions/status",
    summary="A video's captions state",
    tags=["cdn"],
    responses=responses(models.CaptionsInfo, 401, 404, 429, 503),
)
def captions_status(video_id: str, org: Org) -> Envelope[models.CaptionsInfo]:
    """`captions`: pending, ready, failed (with `reason`) or none; `source` auto or upload."""
    return ok(captions.status(org, video_id))


@api.put(
    "/v1/cdn/videos/<video_id>/captions",
    summary="Replace a video's captions with your own WebVTT",
    tags=["cdn"],
    responses=responses(models.CaptionsInfo, 400, 401, 403, 404, 429, 503),
)
def put_captions(video_id: str, body: models.CaptionsUpload, org: Org) -> Envelope[models.CaptionsInfo]:
    """Owners and admins (or the org key): the file is checked as WebVTT (400 naming the line),
    then replaces the automatic captions in the stream and the transcript (`source: upload`)."""
    return ok(captions.upload(org, video_id, body))


# The stream proxy answers players, not API clients: playlists as text, authorised by the token in
# the URL alone (players cannot send headers), so these are public routes.
@app.get(
    "/v1/cdn/stream/<video_id>/master.m3u8",
    summary="HLS master playlist (signed)",
    tags=["cdn"],
    responses=responses(None, 403, 404, 503),
    openapi_extensions=PUBLIC,
)
def stream_master(
    video_id: str, token: Annotated[str | None, Query(max_length=1024)] = None
) -> Response[str]:
    """The master playlist; every variant URL carries the token."""
    return Response(200, logic.PLAYLIST_TYPE, logic.master_playlist(video_id, token), headers=STREAM_HEADERS)


@app.get(
    "/v1/cdn/stream/<video_id>/<rendition>/index.m3u8",
    summary="HLS media playlist (signed)",
    tags=["cdn"],
    responses=responses(None, 403, 404, 503),
    openapi_extensions=PUBLIC,
)
def stream_rendition(
    video_id: str, rendition: str, token: Annotated[str | None, Query(max_length=1024)] = None
) -> Response[str]:
    """A rendition's playlist; every segment URL is signed and short-lived."""
    text = logic.media_playlist(video_id, rendition, token)
    headers = STREAM_HEADERS if "#EXT-X-ENDLIST" in text else GROWING_HEADERS
    return Response(200, logic.PLAYLIST_TYPE, text, headers=headers)


handler = lambda_handler(app)
