"""LiveKit access: join tokens, RoomService and Egress over Twirp (livekit-api), webhook checks.

livekit-api's clients are asyncio/aiohttp. Handlers are synchronous, so one event loop runs in a
daemon thread for the life of the process and every call is submitted to it: the aiohttp session
and its pooled connections survive warm invocations instead of being rebuilt per request.
Driver errors become domain errors here: unreachable or failing LiveKit is ServiceUnavailable (503),
an unknown room or participant is NotFound, anything else LiveKit refuses is UpstreamError.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from verriflo.errors import Conflict, NotFound, ServiceUnavailable, Unauthorized, UpstreamError
from verriflo.observability import logger
from verriflo.secrets import get_secret

from rooms.config import live_settings
from rooms.policy import Grants

if TYPE_CHECKING:
    from livekit.api import LiveKitAPI

_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class Track:
    """A published track, as the rooms API shows it."""

    sid: str
    source: str
    type: str
    muted: bool


@dataclass(frozen=True, slots=True)
class Permission:
    """What a connected participant may do now."""

    can_publish: bool
    can_subscribe: bool
    can_publish_data: bool
    can_screen_share: bool
    hidden: bool


@dataclass(frozen=True, slots=True)
class Person:
    """A participant as LiveKit sees them, in plain Python."""

    identity: str
    name: str
    metadata: dict[str, Any]
    state: str
    joined_at: datetime | None
    is_standard: bool  # a person, not an egress/ingress/agent worker
    tracks: tuple[Track, ...]
    permission: Permission | None
    sid: str = ""  # LiveKit's participant sid: our session id is `<room sid>:<participant sid>`
    joined_at_ms: int = 0  # joined_at to the millisecond (0: not reported)
    # why LiveKit disconnected them (its DisconnectReason name), in a participant_left
    disconnect_reason: str = "UNKNOWN_REASON"


@dataclass(frozen=True, slots=True)
class EgressReport:
    """What LiveKit reports of one egress (a recording), in plain Python."""

    egress_id: str
    room_name: str
    status: str  # LiveKit's EgressStatus name, e.g. EGRESS_COMPLETE
    ended_at: float | None  # seconds since the epoch
    error: str
    outputs: tuple[tuple[str, str], ...]  # (bucket, key) of each file the egress was asked to write
    size: int | None  # of its first file, when it has one
    duration_s: float | None


@dataclass(frozen=True, slots=True)
class Notice:
    """One signed LiveKit webhook, in plain Python: the event, and the room, participant or egress
    it is about (times in seconds since the epoch, 0 when LiveKit left them out)."""

    id: str
    event: str
    created_at: int
    room_name: str = ""
    room_created_at: int = 0
    participant_sid: str = ""
    participant: Person | None = None
    egress: EgressReport | None = None


def _egress_report(info: Any) -> EgressReport:
    from livekit.protocol.egress import EgressStatus

    request = info.room_composite
    outputs = list(request.file_outputs) or ([request.file] if request.HasField("file") else [])
    first = info.file_results[0] if info.file_results else None
    return EgressReport(
        egress_id=info.egress_id,
        room_name=info.room_name,
        status=EgressStatus.Name(info.status),
        ended_at=info.ended_at / 1e9 if info.ended_at else None,
        error=info.error,
        outputs=tuple((o.s3.bucket, o.filepath) for o in outputs),
        size=int(first.size) if first else None,
        duration_s=round(first.duration / 1e9, 3) if first else None,
    )


def _notice(event: Any) -> Notice:
    room = event.room if event.HasField("room") else None
    participant = event.participant if event.HasField("participant") else None
    return Notice(
        id=event.id,
        event=event.event,
        created_at=event.created_at,
        room_name=room.name if room else "",
        room_created_at=room.creation_time if room else 0,
        participant_sid=participant.sid if participant else "",
        participant=_person(participant) if participant else None,
        egress=_egress_report(event.egress_info) if event.HasField("egress_info") else None,
    )


def _person(info: Any) -> Person:
    from livekit.protocol.models import DisconnectReason, ParticipantInfo, TrackSource, TrackType

    try:
        meta = json.loads(info.metadata or "{}")
    except ValueError:
        meta = {}
    perm = info.permission if info.HasField("permission") else None
    sources = {TrackSource.Name(s) for s in perm.can_publish_sources} if perm else set()
    return Person(
        identity=info.identity,
        name=info.name,
        metadata=meta if isinstance(meta, dict) else {},
        state=ParticipantInfo.State.Name(info.state),
        joined_at=datetime.fromtimestamp(info.joined_at, UTC) if info.joined_at else None,
        is_standard=info.kind == ParticipantInfo.Kind.STANDARD,
        tracks=tuple(
            Track(t.sid, TrackSource.Name(t.source), TrackType.Name(t.type), t.muted) for t in info.tracks
        ),
        permission=Permission(
            can_publish=perm.can_publish,
            can_subscribe=perm.can_subscribe,
            can_publish_data=perm.can_publish_data,
            # LiveKit: an empty source list means every source is allowed.
            can_screen_share=perm.can_publish and (not sources or "SCREEN_SHARE" in sources),
            hidden=perm.hidden,
        )
        if perm
        else None,
        sid=info.sid,
        joined_at_ms=info.joined_at_ms,
        # a reason newer than our protocol package has no name here: not one we act on
        disconnect_reason=DisconnectReason.Name(info.disconnect_reason)
        if info.disconnect_reason in DisconnectReason.values()
        else "UNKNOWN_REASON",
    )


def credentials() -> tuple[str, str]:
    """The LiveKit API key and secret from Secrets Manager (cached by the secrets module)."""
    return _parse_credentials(get_secret(live_settings().livekit_secret_name))


@lru_cache(maxsize=4)
def _parse_credentials(raw: str) -> tuple[str, str]:
    # Keyed by the secret's text, so a rotated secret is parsed once and the old pair forgotten.
    try:
        value = json.loads(raw)
        return str(value["apiKey"]), str(value["apiSecret"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ServiceUnavailable("The LiveKit credentials are not configured.") from exc


# --- tokens (no I/O) ------------------------------------------------------------------------------


def mint_token(
    *, identity: str, name: str, room: str, grants: Grants, metadata: dict[str, Any], ttl_s: int
) -> tuple[str, datetime]:
    """A signed join token for one participant of `room`, and when it expires."""
    from livekit.api import AccessToken, VideoGrants

    key, secret = credentials()
    # Grants LiveKit checks project-wide (roomRecord, roomCreate, roomList, ingressAdmin) and
    # canUpdateOwnMetadata are never set: this token reaches a browser (rooms.policy).
    video = VideoGrants(
        room_join=True,
        room=room,
        can_publish=grants.can_publish,
        can_subscribe=grants.can_subscribe,
        can_publish_data=grants.can_publish_data,
        can_publish_sources=list(grants.sources),
        can_update_own_metadata=False,
        room_admin=grants.room_admin,
        hidden=grants.hidden,
    )
    expires = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=ttl_s)
    token = (
        AccessToken(key, secret)
        .with_identity(identity)
        .with_name(name)
        .with_metadata(json.dumps(metadata, separators=(",", ":")))
        .with_grants(video)
        .with_ttl(timedelta(seconds=ttl_s))
        .to_jwt()
    )
    return token, expires


def receive_webhook(body: str, authorization: str | None) -> Notice:
    """The webhook event if LiveKit signed exactly this body; Unauthorized otherwise."""
    if not authorization:
        raise Unauthorized("The webhook is not signed.")
    token = authorization.removeprefix("Bearer ").strip()
    try:
        event = _receiver(*credentials()).receive(body, token)
    except Exception as exc:  # noqa: BLE001 - the receiver raises bare Exception and PyJWT errors
        raise Unauthorized("The webhook signature is not valid.") from exc
    return _notice(event)


@lru_cache(maxsize=4)
def _receiver(key: str, secret: str) -> Any:
    from livekit.api import TokenVerifier, WebhookReceiver

    return WebhookReceiver(TokenVerifier(key, secret))


# --- the client -----------------------------------------------------------------------------------


@cache
def _loop() -> asyncio.AbstractEventLoop:
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, name="livekit-io", daemon=True).start()
    return loop


def _submit[T](coro: Awaitable[T]) -> T:
    timeout = live_settings().livekit_timeout_s
    return asyncio.run_coroutine_threadsafe(coro, _loop()).result(timeout + 1)  # type: ignore[arg-type]


_clients: dict[tuple[str, str, str], LiveKitAPI] = {}


def _client() -> LiveKitAPI:
    settings = live_settings()
    key, secret = credentials()
    ident = (settings.livekit_url, key, secret)
    found = _clients.get(ident)
    if found is not None:
        return found
    with _lock:
        if ident not in _clients:
            import aiohttp
            from livekit.api import LiveKitAPI

            async def make() -> LiveKitAPI:
                # The session must be created inside the loop that will use it. No region failover:
                # a local or self-hosted server has no regions, and 503 should come fast.
                return LiveKitAPI(
                    settings.livekit_url,
                    key,
                    secret,
                    failover=False,
                    timeout=aiohttp.ClientTimeout(total=settings.livekit_timeout_s),
                )

            for old in _clients.values():  # rotated credentials or a new URL: drop the old client
                _submit(old.aclose())
            _clients.clear()
            _clients[ident] = _submit(make())
        return _clients[ident]


def _call[T](operation: str, make: Callable[[LiveKitAPI], Awaitable[T]]) -> T:
    """Run one LiveKit API call and translate its failures into domain errors."""
    import aiohttp
    from livekit.api import ServerError

    for attempt in (1, 2):
        try:
            return _submit(make(_client()))
        except aiohttp.ServerDisconnectedError as exc:
            # A pooled connection the server closed while the Lambda was frozen: retry once.
            if attempt == 2:
                raise ServiceUnavailable("LiveKit is unavailable; retry shortly.") from exc
        except ServerError as exc:
            logger.warning(
                "livekit.refused", extra={"operation": operation, "code": exc.code, "status": exc.status}
            )
            if exc.code == "not_found" or exc.status == 404:
                raise NotFound("Not found in the live service.") from exc
            if exc.code == "failed_precondition":
                raise Conflict(
                    "The live service refused: the room or recording is not in that state."
                ) from exc
            if exc.status >= 500 or exc.code == "unavailable":
                raise ServiceUnavailable("LiveKit is unavailable; retry shortly.") from exc
            raise UpstreamError("LiveKit refused the request.") from exc
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            logger.warning(
                "livekit.unreachable", extra={"operation": operation, "error_type": type(exc).__name__}
            )
            raise ServiceUnavailable("LiveKit is unavailable; retry shortly.") from exc
    raise AssertionError("unreachable")


def create_room(name: str, *, empty_timeout: int, max_participants: int, metadata: dict[str, Any]) -> str:
    """Create (or find, CreateRoom is idempotent) the LiveKit room; returns its sid."""
    from livekit.api import CreateRoomRequest

    request = CreateRoomRequest(
        name=name,
        empty_timeout=empty_timeout,
        max_participants=max_participants,
        metadata=json.dumps(metadata, separators=(",", ":")),
    )
    return _call("create_room", lambda c: c.room.create_room(request)).sid


def delete_room(name: str) -> None:
    """Close the LiveKit room, disconnecting everyone; a room LiveKit already closed is fine."""
    from livekit.api import DeleteRoomRequest

    try:
        _call("delete_room", lambda c: c.room.delete_room(DeleteRoomRequest(room=name)))
    except NotFound:
        pass


def list_participants(room: str) -> list[Person]:
    """Everyone in the LiveKit room now."""
    from livekit.api import ListParticipantsRequest

    try:
        reply = _call(
            "list_participants", lambda c: c.room.list_participants(ListParticipantsRequest(room=room))
        )
    except NotFound:
        return []
    return [_person(p) for p in reply.participants]


def open_rooms(names: list[str]) -> set[str]:
    """Which of these rooms LiveKit has open now (one call; the rooms sweep's check for a room whose
    `room_finished` webhook was lost)."""
    from livekit.api import ListRoomsRequest

    if not names:
        return set()
    reply = _call("list_rooms", lambda c: c.room.list_rooms(ListRoomsRequest(names=names)))
    return {r.name for r in reply.rooms}


def remove_participant(room: str, identity: str, *, gone_ok: bool = False) -> None:
    """Disconnect one participant; one LiveKit does not have (any more) is NotFound, or fine with
    `gone_ok`."""
    from livekit.api import RoomParticipantIdentity

    try:
        _call(
            "remove_participant",
            lambda c: c.room.remove_participant(RoomParticipantIdentity(room=room, identity=identity)),
        )
    except NotFound:
        if not gone_ok:
            raise


def mute_track(room: str, identity: str, track_sid: str, muted: bool) -> bool:
    """Mute (or unmute) a track a participant publishes; whether it is muted now."""
    from livekit.api import MuteRoomTrackRequest

    request = MuteRoomTrackRequest(room=room, identity=identity, track_sid=track_sid, muted=muted)
    return _call("mute_track", lambda c: c.room.mute_published_track(request)).track.muted


def update_participant(
    room: str, identity: str, *, grants: Grants, metadata: dict[str, Any], name: str | None
) -> Person:
    """Change a connected participant's permissions, metadata and name."""
    from livekit.api import UpdateParticipantRequest
    from livekit.protocol.models import ParticipantPermission, TrackSource

    permission = ParticipantPermission(
        can_subscribe=grants.can_subscribe,
        can_publish=grants.can_publish,
        can_publish_data=grants.can_publish_data,
        hidden=grants.hidden,
        can_update_metadata=False,
        can_publish_sources=[TrackSource.Value(s.upper()) for s in grants.sources],
    )
    request = UpdateParticipantRequest(
        room=room,
        identity=identity,
        permission=permission,
        name=name or "",
        metadata=json.dumps(metadata, separators=(",", ":")),
    )
    return _person(_call("update_participant", lambda c: c.room.update_participant(request)))


def start_recording(room: str, *, layout: str, preset: str, bucket: str, key: str) -> str:
    """Start a room-composite recording to an MP4 in the recordings bucket; its egress id."""
    from livekit.api import (
        EncodedFileOutput,
        EncodedFileType,
        EncodingOptionsPreset,
        RoomCompositeEgressRequest,
        S3Upload,
    )

    region = live_settings().aws_region
    request = RoomCompositeEgressRequest(
        room_name=room,
        layout=layout,
        preset=EncodingOptionsPreset.Value(preset),
        file_outputs=[
            EncodedFileOutput(
                file_type=EncodedFileType.MP4, filepath=key, s3=S3Upload(bucket=bucket, region=region)
            )
        ],
    )
    return _call("start_recording", lambda c: c.egress.start_room_composite_egress(request)).egress_id


def stop_recording(egress_id: str) -> str:
    """Stop a recording (LiveKit finishes the file and reports it by webhook); its status now."""
    from livekit.api import StopEgressRequest
    from livekit.protocol.egress import EgressStatus

    info = _call("stop_recording", lambda c: c.egress.stop_egress(StopEgressRequest(egress_id=egress_id)))
    return EgressStatus.Name(info.status)


def reset() -> None:
    """Close and forget cached clients (tests point at fresh stand-ins)."""
    for client in list(_clients.values()):
        _submit(client.aclose())
    _clients.clear()
