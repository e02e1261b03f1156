"""The LiveKit stand-in server.

Speaks, over HTTP on one port:
- Twirp `POST /twirp/livekit.RoomService/<Method>` and `/twirp/livekit.Egress/<Method>` with
  protobuf (`application/protobuf`) or JSON bodies, authorised by a bearer JWT checked as LiveKit
  checks it (signed by the API secret, issued by the API key, with the grant each method needs:
  `roomCreate` to create and delete rooms, `roomList` to list them, `roomAdmin` for the room the
  token names and no other to manage participants and room metadata, `roomRecord` for every Egress
  method, which LiveKit does not scope to a room); errors are Twirp JSON `{"code", "msg"}` with
  LiveKit's status codes.
- Admin routes to simulate what browsers and egress workers would do, scoped as LiveKit scopes the
  same acts (a browser acts only in its own room, as itself):
  `POST /admin/rooms/<room>/participants` (join; body `{"token": <join token>}` or
  `{"identity", "name", "metadata", "tracks": [...]}`; bearer: a token of that room),
  `DELETE /admin/rooms/<room>/participants/<identity>` (leave; bearer: that participant's own join
  token or `roomAdmin` of the room), `POST /admin/rooms/<room>/participants/<identity>/metadata`
  (the client SDK's own metadata/name/attributes update; bearer: that participant's join token, and
  its `canUpdateOwnMetadata`), `POST /admin/egress/<egressId>/complete` (an egress worker finishes;
  `roomRecord`), `GET /admin/state` (every room; `roomList`).
- Webhooks to every `--webhook-url`, signed exactly as LiveKit signs them (a JWT in
  `Authorization` carrying the base64 sha256 of the body), delivered in order with retries.
Recordings are real: when an egress finishes, FFmpeg renders a short MP4 which is uploaded to the
S3 bucket named in the request (endpoint from `AWS_ENDPOINT_URL`, as every AWS client here).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import queue
import secrets
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from livekit import api
from livekit.protocol import egress as proto_egress
from livekit.protocol import models as proto_models
from livekit.protocol import room as proto_room
from livekit.protocol import webhook as proto_webhook

log = logging.getLogger("standins.livekit")


class TwirpError(Exception):
    """A Twirp error answer (https://twitchtv.github.io/twirp/docs/spec_v7.html#error-codes)."""

    STATUS = {
        "unauthenticated": 401,
        "permission_denied": 403,
        "not_found": 404,
        "invalid_argument": 400,
        "malformed": 400,
        "bad_route": 404,
        "already_exists": 409,
        "failed_precondition": 412,
        "internal": 500,
        "unavailable": 503,
    }

    def __init__(self, code: str, msg: str) -> None:
        super().__init__(msg)
        self.code, self.msg = code, msg

    @property
    def status(self) -> int:
        return self.STATUS.get(self.code, 500)


def _sid(prefix: str) -> str:
    # LiveKit sids are a prefix and 12 base62 characters.
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    return prefix + "".join(secrets.choice(alphabet) for _ in range(12))


@dataclass
class _Room:
    info: proto_models.Room
    participants: dict[str, proto_models.ParticipantInfo] = field(default_factory=dict)
    empty_since: float = field(default_factory=time.monotonic)


class StandIn:
    """The stand-in's state and HTTP server (start() to serve in a thread, stop() to end)."""

    def __init__(
        self,
        api_key: str,
        api_secret: str,
        *,
        webhook_urls: list[str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        recording_seconds: float = 2.0,
    ) -> None:
        self.api_key, self._secret = api_key, api_secret
        self.webhook_urls = list(webhook_urls or [])
        self.recording_seconds = recording_seconds
        self._verifier = api.TokenVerifier(api_key, api_secret)
        self._rooms: dict[str, _Room] = {}
        self._egress: dict[str, proto_egress.EgressInfo] = {}
        self._lock = threading.RLock()
        self._hooks: queue.Queue[proto_webhook.WebhookEvent | None] = queue.Queue()
        self._stopped = threading.Event()
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        self._threads: list[threading.Thread] = []

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> StandIn:
        """Serve HTTP, deliver webhooks and close empty rooms, each in a daemon thread."""
        for target, name in (
            (self._server.serve_forever, "lk-http"),
            (self._deliver, "lk-webhooks"),
            (self._reap, "lk-reaper"),
        ):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        """Stop serving; webhooks already queued are delivered first (bounded)."""
        self._stopped.set()
        self._hooks.put(None)
        self._server.shutdown()
        self._server.server_close()
        for thread in self._threads:
            thread.join(timeout=10)

    # --- auth ------------------------------------------------------------------------------------

    def authorize(self, header: str | None) -> api.access_token.Claims:
        """The claims of a bearer JWT signed by our secret, or Twirp `unauthenticated`."""
        if not header or not header.lower().startswith("bearer "):
            raise TwirpError("unauthenticated", "no authorization token")
        try:
            return self._verifier.verify(header[7:].strip())
        except Exception as exc:  # noqa: BLE001 - PyJWT raises many kinds for one condition
            raise TwirpError("unauthenticated", f"invalid token: {exc}") from exc

    @staticmethod
    def need_grant(claims: api.access_token.Claims, grant: str, room: str | None = None) -> None:
        """LiveKit's check: the grant, and for `room_admin` exactly the request's room (a token
        naming no room, or another, administers nothing: LiveKit's EnsureAdminPermission)."""
        video = claims.video or api.VideoGrants()
        if not getattr(video, grant, False):
            raise TwirpError("permission_denied", f"permissions denied: {grant} required")
        if grant == "room_admin" and video.room != (room or ""):
            raise TwirpError("permission_denied", "permissions denied: token is for another room")

    @staticmethod
    def need_room(claims: api.access_token.Claims, room: str, identity: str | None = None) -> None:
        """A simulated client act in `room`: allowed to the room's admin, or to a participant's own
        join token (as itself, when `identity` is given); never across rooms."""
        video = claims.video or api.VideoGrants()
        if video.room != room:
            raise TwirpError("permission_denied", "permissions denied: token is for another room")
        if video.room_admin:
            return
        if not video.room_join or (identity is not None and claims.identity != identity):
            raise TwirpError("permission_denied", "permissions denied: not this participant's token")

    # --- RoomService -------------------------------------------------------------------------------

    def _room(self, name: str) -> _Room:
        room = self._rooms.get(name)
        if room is None:
            raise TwirpError("not_found", "requested room does not exist")
        return room

    def _participant(self, room: str, identity: str) -> proto_models.ParticipantInfo:
        found = self._room(room).participants.get(identity)
        if found is None:
            raise TwirpError("not_found", "participant does not exist")
        return found

    def room_service(self, method: str, body: bytes, json_body: bool, claims: Any) -> Message:
        """Handle one RoomService method."""
        handlers = {
            "CreateRoom": (proto_room.CreateRoomRequest, "room_create", self._create_room),
            "ListRooms": (proto_room.ListRoomsRequest, "room_list", self._list_rooms),
            "DeleteRoom": (proto_room.DeleteRoomRequest, "room_create", self._delete_room),
            "ListParticipants": (proto_room.ListParticipantsRequest, "room_admin", self._list_participants),
            "GetParticipant": (
                proto_room.RoomParticipantIdentity,
                "room_admin",
                lambda r: self._participant(r.room, r.identity),
            ),
            "RemoveParticipant": (proto_room.RoomParticipantIdentity, "room_admin", self._remove_participant),
            "MutePublishedTrack": (proto_room.MuteRoomTrackRequest, "room_admin", self._mute),
            "UpdateParticipant": (
                proto_room.UpdateParticipantRequest,
                "room_admin",
                self._update_participant,
            ),
            "UpdateRoomMetadata": (proto_room.UpdateRoomMetadataRequest, "room_admin", self._update_metadata),
        }
        if method not in handlers:
            raise TwirpError("bad_route", f"no handler for RoomService/{method}")
        request_type, grant, run = handlers[method]
        request = _parse(request_type, body, json_body)
        self.need_grant(claims, grant, getattr(request, "room", None))
        with self._lock:
            return run(request)

    def _create_room(self, req: proto_room.CreateRoomRequest) -> proto_models.Room:
        if not req.name:
            raise TwirpError("invalid_argument", "room name is required")
        existing = self._rooms.get(req.name)
        if existing is not None:
            return existing.info  # CreateRoom is idempotent in LiveKit
        now = time.time()
        info = proto_models.Room(
            sid=_sid("RM_"),
            name=req.name,
            empty_timeout=req.empty_timeout or 300,
            departure_timeout=req.departure_timeout or 20,
            max_participants=req.max_participants,
            metadata=req.metadata,
            creation_time=int(now),
            creation_time_ms=int(now * 1000),
        )
        self._rooms[req.name] = _Room(info)
        self._emit("room_started", room=info)
        return info

    def _list_rooms(self, req: proto_room.ListRoomsRequest) -> proto_room.ListRoomsResponse:
        names = set(req.names)
        return proto_room.ListRoomsResponse(
            rooms=[r.info for n, r in self._rooms.items() if not names or n in names]
        )

    def _close(self, name: str, reason: int) -> None:
        room = self._rooms.pop(name)
        for participant in list(room.participants.values()):
            participant.state = proto_models.ParticipantInfo.State.DISCONNECTED
            participant.disconnect_reason = proto_models.DisconnectReason.ROOM_DELETED
            self._emit("participant_left", room=room.info, participant=participant)
        for info in list(self._egress.values()):
            if info.room_name == name and info.status in (
                proto_egress.EGRESS_STARTING,
                proto_egress.EGRESS_ACTIVE,
            ):
                self._finish_egress(info)
        self._emit("room_finished", room=room.info, room_end_reason=reason)

    def _delete_room(self, req: proto_room.DeleteRoomRequest) -> proto_room.DeleteRoomResponse:
        self._room(req.room)
        self._close(req.room, proto_models.RoomEndReason.ROOM_END_API_DELETE)
        return proto_room.DeleteRoomResponse()

    def _list_participants(
        self, req: proto_room.ListParticipantsRequest
    ) -> proto_room.ListParticipantsResponse:
        return proto_room.ListParticipantsResponse(
            participants=list(self._room(req.room).participants.values())
        )

    def _remove_participant(
        self, req: proto_room.RoomParticipantIdentity
    ) -> proto_room.RemoveParticipantResponse:
        participant = self._participant(req.room, req.identity)
        self._leave(req.room, participant, proto_models.DisconnectReason.PARTICIPANT_REMOVED)
        return proto_room.RemoveParticipantResponse()

    def _mute(self, req: proto_room.MuteRoomTrackRequest) -> proto_room.MuteRoomTrackResponse:
        participant = self._participant(req.room, req.identity)
        for track in participant.tracks:
            if track.sid == req.track_sid:
                track.muted = req.muted
                participant.version += 1
                return proto_room.MuteRoomTrackResponse(track=track)
        raise TwirpError("not_found", "track does not exist")

    def _update_participant(self, req: proto_room.UpdateParticipantRequest) -> proto_models.ParticipantInfo:
        participant = self._participant(req.room, req.identity)
        if req.HasField("permission"):
            participant.permission.CopyFrom(req.permission)
        if req.metadata:
            participant.metadata = req.metadata
        if req.name:
            participant.name = req.name
        for key, value in req.attributes.items():
            participant.attributes[key] = value
        participant.version += 1
        return participant

    def _update_metadata(self, req: proto_room.UpdateRoomMetadataRequest) -> proto_models.Room:
        room = self._room(req.room)
        room.info.metadata = req.metadata
        return room.info

    # --- Egress ----------------------------------------------------------------------------------

    def egress_service(self, method: str, body: bytes, json_body: bool, claims: Any) -> Message:
        """Handle one Egress method."""
        self.need_grant(claims, "room_record")
        with self._lock:
            if method == "StartRoomCompositeEgress":
                return self._start_egress(_parse(proto_egress.RoomCompositeEgressRequest, body, json_body))
            if method == "StopEgress":
                request = _parse(proto_egress.StopEgressRequest, body, json_body)
                info = self._egress.get(request.egress_id)
                if info is None:
                    raise TwirpError("not_found", "egress does not exist")
                if info.status not in (proto_egress.EGRESS_STARTING, proto_egress.EGRESS_ACTIVE):
                    raise TwirpError("failed_precondition", "egress is not active")
                return self._finish_egress(info)
            if method == "ListEgress":
                request = _parse(proto_egress.ListEgressRequest, body, json_body)
                items = [
                    e
                    for e in self._egress.values()
                    if (not request.room_name or e.room_name == request.room_name)
                    and (not request.egress_id or e.egress_id == request.egress_id)
                    and (
                        not request.active
                        or e.status in (proto_egress.EGRESS_STARTING, proto_egress.EGRESS_ACTIVE)
                    )
                ]
                return proto_egress.ListEgressResponse(items=items)
        raise TwirpError("bad_route", f"no handler for Egress/{method}")

    def _start_egress(self, req: proto_egress.RoomCompositeEgressRequest) -> proto_egress.EgressInfo:
        room = self._room(req.room_name)
        outputs = list(req.file_outputs) or ([req.file] if req.HasField("file") else [])
        if not outputs or not outputs[0].s3.bucket:
            raise TwirpError("invalid_argument", "a file output to S3 is required")
        info = proto_egress.EgressInfo(
            egress_id=_sid("EG_"),
            room_id=room.info.sid,
            room_name=req.room_name,
            status=proto_egress.EGRESS_STARTING,
            started_at=time.time_ns(),
            updated_at=time.time_ns(),
            room_composite=req,
        )
        self._egress[info.egress_id] = info
        room.info.active_recording = True
        self._emit("egress_started", egress_info=info)
        info.status = proto_egress.EGRESS_ACTIVE
        info.updated_at = time.time_ns()
        self._emit("egress_updated", egress_info=info)
        started = proto_egress.EgressInfo()
        started.CopyFrom(info)
        started.status = proto_egress.EGRESS_STARTING
        return started

    def _finish_egress(self, info: proto_egress.EgressInfo) -> proto_egress.EgressInfo:
        info.status = proto_egress.EGRESS_ENDING
        info.updated_at = time.time_ns()
        self._emit("egress_updated", egress_info=info)
        room = self._rooms.get(info.room_name)
        if room is not None:
            room.info.active_recording = False
        answer = proto_egress.EgressInfo()
        answer.CopyFrom(info)
        threading.Thread(target=self._upload, args=(info,), name="lk-egress", daemon=True).start()
        return answer

    def _upload(self, info: proto_egress.EgressInfo) -> None:
        """Render and upload the recording, then report egress_ended (as an egress worker does)."""
        output = info.room_composite.file_outputs[0]
        try:
            seconds = max(1.0, min(self.recording_seconds, (time.time_ns() - info.started_at) / 1e9))
            size = _upload_mp4(output, seconds)
            ended = time.time_ns()
            location = f"s3://{output.s3.bucket}/{output.filepath}"
            with self._lock:
                info.file_results.append(
                    proto_egress.FileInfo(
                        filename=output.filepath,
                        location=location,
                        size=size,
                        duration=int(seconds * 1e9),
                        started_at=info.started_at,
                        ended_at=ended,
                    )
                )
                info.status, info.ended_at, info.updated_at = proto_egress.EGRESS_COMPLETE, ended, ended
        except Exception as exc:  # noqa: BLE001 - any failure is reported the way LiveKit reports it
            log.exception("egress upload failed")
            with self._lock:
                info.status, info.error = proto_egress.EGRESS_FAILED, str(exc)[:300]
                info.ended_at = info.updated_at = time.time_ns()
        with self._lock:
            self._emit("egress_ended", egress_info=info)

    # --- simulated clients -----------------------------------------------------------------------

    def join(self, room_name: str, body: dict[str, Any]) -> proto_models.ParticipantInfo:
        """A participant connects (with a real join token, or as described)."""
        with self._lock:
            room = self._room(room_name)
            if body.get("token"):
                claims = self._verifier.verify(body["token"])
                video = claims.video or api.VideoGrants()
                if not video.room_join or video.room != room_name:
                    raise TwirpError("permission_denied", "token does not grant joining this room")
                identity, name, metadata = claims.identity, claims.name, claims.metadata
                sources = [
                    proto_models.TrackSource.Value(s.upper()) for s in (video.can_publish_sources or [])
                ]
                permission = proto_models.ParticipantPermission(
                    can_subscribe=bool(video.can_subscribe),
                    can_publish=bool(video.can_publish),
                    can_publish_data=bool(video.can_publish_data),
                    hidden=bool(video.hidden),
                    can_update_metadata=bool(video.can_update_own_metadata),
                    can_publish_sources=sources,
                )
            else:
                identity, name, metadata = (
                    body["identity"],
                    body.get("name", body["identity"]),
                    body.get("metadata", ""),
                )
                permission = proto_models.ParticipantPermission(
                    can_subscribe=True, can_publish=True, can_publish_data=True
                )
            limit = room.info.max_participants
            if limit and len(room.participants) >= limit and identity not in room.participants:
                raise TwirpError("resource_exhausted", "room is full")
            previous = room.participants.get(identity)
            if previous is not None:  # same identity again: LiveKit disconnects the older session
                self._leave(room_name, previous, proto_models.DisconnectReason.DUPLICATE_IDENTITY)
            now = time.time()
            participant = proto_models.ParticipantInfo(
                sid=_sid("PA_"),
                identity=identity,
                name=name,
                metadata=metadata,
                state=proto_models.ParticipantInfo.State.ACTIVE,
                joined_at=int(now),
                joined_at_ms=int(now * 1000),
                permission=permission,
                is_publisher=False,
            )
            for track in body.get("tracks") or []:
                participant.tracks.append(
                    proto_models.TrackInfo(
                        sid=_sid("TR_"),
                        type=proto_models.TrackType.Value(track.get("type", "AUDIO")),
                        source=proto_models.TrackSource.Value(track.get("source", "MICROPHONE")),
                        name=track.get("name", ""),
                        muted=bool(track.get("muted", False)),
                    )
                )
                participant.is_publisher = True
            room.participants[identity] = participant
            room.info.num_participants = len(room.participants)
            self._emit("participant_joined", room=room.info, participant=participant)
            return participant

    def leave(self, room_name: str, identity: str) -> None:
        """A participant disconnects on their own."""
        with self._lock:
            participant = self._participant(room_name, identity)
            self._leave(room_name, participant, proto_models.DisconnectReason.CLIENT_INITIATED)

    def update_own(
        self, room_name: str, identity: str, body: dict[str, Any], claims: api.access_token.Claims
    ) -> proto_models.ParticipantInfo:
        """A client changes its own metadata, name or attributes (the SDK's setMetadata, setName,
        setAttributes): LiveKit allows it only with `canUpdateOwnMetadata`."""
        self.need_room(claims, room_name, identity)
        with self._lock:
            participant = self._participant(room_name, identity)
            if not participant.permission.can_update_metadata:
                raise TwirpError("permission_denied", "permissions denied: canUpdateOwnMetadata required")
            if "metadata" in body:
                participant.metadata = str(body["metadata"])
            if body.get("name"):
                participant.name = str(body["name"])
            for key, value in (body.get("attributes") or {}).items():
                participant.attributes[str(key)] = str(value)
            participant.version += 1
            room = self._room(room_name)
            self._emit("participant_metadata_changed", room=room.info, participant=participant)
            return participant

    def _leave(self, room_name: str, participant: proto_models.ParticipantInfo, reason: int) -> None:
        room = self._room(room_name)
        room.participants.pop(participant.identity, None)
        room.info.num_participants = len(room.participants)
        if not room.participants:
            room.empty_since = time.monotonic()
        participant.state = proto_models.ParticipantInfo.State.DISCONNECTED
        participant.disconnect_reason = reason
        self._emit("participant_left", room=room.info, participant=participant)

    def complete_egress(self, egress_id: str) -> proto_egress.EgressInfo:
        """An egress ends on its own (e.g. a limit was reached)."""
        with self._lock:
            info = self._egress.get(egress_id)
            if info is None:
                raise TwirpError("not_found", "egress does not exist")
            return self._finish_egress(info)

    def state(self) -> dict[str, Any]:
        """Rooms, participants and egresses, as JSON-ready data."""
        with self._lock:
            return {
                "rooms": [
                    json_format.MessageToDict(r.info)
                    | {"participants": [json_format.MessageToDict(p) for p in r.participants.values()]}
                    for r in self._rooms.values()
                ],
                "egress": [json_format.MessageToDict(e) for e in self._egress.values()],
            }

    def _reap(self) -> None:
        # LiveKit closes a room that stays empty for its empty_timeout.
        while not self._stopped.wait(0.5):
            with self._lock:
                now = time.monotonic()
                for name, room in list(self._rooms.items()):
                    if not room.participants and now - room.empty_since >= room.info.empty_timeout:
                        self._close(name, proto_models.RoomEndReason.ROOM_END_IDLE_TIMEOUT)

    # --- webhooks --------------------------------------------------------------------------------

    def _emit(self, name: str, **fields: Message | int) -> None:
        event = proto_webhook.WebhookEvent(event=name, id=_sid("EV_"), created_at=int(time.time()))
        for key, value in fields.items():
            if isinstance(value, Message):
                getattr(event, key).CopyFrom(value)
            else:
                setattr(event, key, value)
        self._hooks.put(event)

    def sign(self, body: str) -> str:
        """The Authorization value LiveKit sends with a webhook body."""
        digest = base64.b64encode(hashlib.sha256(body.encode()).digest()).decode()
        return (
            api.AccessToken(self.api_key, self._secret)
            .with_sha256(digest)
            .with_ttl(timedelta(minutes=5))
            .to_jwt()
        )

    def _deliver(self) -> None:
        while True:
            event = self._hooks.get()
            if event is None:
                return
            body = json_format.MessageToJson(event, indent=None)
            for url in self.webhook_urls:
                self._post(url, body)

    def _post(self, url: str, body: str) -> None:
        for attempt in range(4):
            request = urllib.request.Request(  # noqa: S310 - http URLs we were given
                url,
                data=body.encode(),
                method="POST",
                headers={"Content-Type": "application/webhook+json", "Authorization": self.sign(body)},
            )
            try:
                with urllib.request.urlopen(request, timeout=5) as reply:  # noqa: S310
                    if reply.status < 300:
                        return
            except (urllib.error.URLError, OSError) as exc:
                log.warning("webhook delivery failed (attempt %d): %s", attempt + 1, exc)
            if self._stopped.wait(0.2 * 2**attempt) and attempt >= 1:
                return


def _parse(message_type: type[Message], body: bytes, json_body: bool) -> Any:
    try:
        if json_body:
            return json_format.Parse(body or b"{}", message_type(), ignore_unknown_fields=True)
        return message_type.FromString(body)
    except (DecodeError, json_format.ParseError) as exc:
        raise TwirpError("malformed", f"cannot parse request: {exc}") from exc


def _upload_mp4(output: proto_egress.EncodedFileOutput, seconds: float) -> int:
    """Render a real MP4 (test pattern and tone) with FFmpeg and put it where the request said."""
    import boto3

    with tempfile.TemporaryDirectory(prefix="lk-egress-") as tmp:
        path = Path(tmp) / "recording.mp4"
        subprocess.run(
            [
                "ffmpeg",
                "-hide_banner",
                "-loglevel",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                f"testsrc2=size=320x180:rate=15:duration={seconds:.2f}",
                "-f",
                "lavfi",
                "-i",
                f"sine=frequency=440:duration={seconds:.2f}",
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "aac",
                "-b:a",
                "64k",
                "-shortest",
                "-movflags",
                "+faststart",
                str(path),
            ],
            check=True,
            timeout=60,
        )
        s3 = output.s3
        options: dict[str, Any] = {"region_name": s3.region or None}
        if s3.endpoint:
            options["endpoint_url"] = s3.endpoint
        if s3.access_key:
            options |= {"aws_access_key_id": s3.access_key, "aws_secret_access_key": s3.secret}
        boto3.client("s3", **options).upload_file(
            str(path), s3.bucket, output.filepath, ExtraArgs={"ContentType": "video/mp4"}
        )
        return path.stat().st_size


def _handler_for(stand_in: StandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # One write per response and no Nagle delay: keep-alive clients otherwise wait ~40 ms for
        # the delayed ACK between the header and body segments.
        wbufsize = -1
        disable_nagle_algorithm = True
        server_version = "livekit-standin"

        def log_message(self, fmt: str, *args: Any) -> None:
            log.debug(fmt, *args)

        def _read(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _cors(self) -> None:
            # As LiveKit's server does: browsers (the classroom page) call it from another origin.
            self.send_header("Access-Control-Allow-Origin", "*")
            self.send_header("Access-Control-Allow-Headers", "Authorization, Content-Type")
            self.send_header("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")

        def do_OPTIONS(self) -> None:  # noqa: N802 - http.server's naming
            self.send_response(204)
            self._cors()
            self.send_header("Content-Length", "0")
            self.end_headers()

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self._cors()
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, value: Any) -> None:
            self._send(status, json.dumps(value).encode(), "application/json")

        def _error(self, exc: TwirpError) -> None:
            self._json(exc.status, {"code": exc.code, "msg": exc.msg})

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self._read()
            parts = self.path.split("?")[0].strip("/").split("/")
            try:
                claims = stand_in.authorize(self.headers.get("Authorization"))
                if len(parts) == 3 and parts[0] == "twirp":
                    json_body = (self.headers.get("Content-Type") or "").startswith("application/json")
                    service, method = parts[1], parts[2]
                    if service == "livekit.RoomService":
                        reply = stand_in.room_service(method, body, json_body, claims)
                    elif service == "livekit.Egress":
                        reply = stand_in.egress_service(method, body, json_body, claims)
                    else:
                        raise TwirpError("bad_route", f"unknown service {service}")
                    if json_body:
                        self._send(
                            200, json_format.MessageToJson(reply, indent=None).encode(), "application/json"
                        )
                    else:
                        self._send(200, reply.SerializeToString(), "application/protobuf")
                elif parts[:2] == ["admin", "rooms"] and len(parts) == 4 and parts[3] == "participants":
                    stand_in.need_room(claims, parts[2])
                    request = json.loads(body or b"{}")
                    if not request.get("token") and not (claims.video and claims.video.room_admin):
                        raise TwirpError("permission_denied", "permissions denied: room_admin required")
                    info = stand_in.join(parts[2], request)
                    self._json(200, json_format.MessageToDict(info))
                elif (
                    parts[:2] == ["admin", "rooms"]
                    and len(parts) == 6
                    and parts[3:6:2]
                    == [
                        "participants",
                        "metadata",
                    ]
                ):
                    info = stand_in.update_own(parts[2], parts[4], json.loads(body or b"{}"), claims)
                    self._json(200, json_format.MessageToDict(info))
                elif parts[:2] == ["admin", "egress"] and len(parts) == 4 and parts[3] == "complete":
                    stand_in.need_grant(claims, "room_record")
                    self._json(200, json_format.MessageToDict(stand_in.complete_egress(parts[2])))
                else:
                    raise TwirpError("bad_route", "no such route")
            except TwirpError as exc:
                self._error(exc)
            except (ValueError, KeyError) as exc:
                self._error(TwirpError("invalid_argument", str(exc)))

        def do_DELETE(self) -> None:  # noqa: N802
            parts = self.path.split("?")[0].strip("/").split("/")
            try:
                claims = stand_in.authorize(self.headers.get("Authorization"))
                if parts[:2] == ["admin", "rooms"] and len(parts) == 5 and parts[3] == "participants":
                    stand_in.need_room(claims, parts[2], parts[4])
                    stand_in.leave(parts[2], parts[4])
                    self._json(200, {})
                else:
                    raise TwirpError("bad_route", "no such route")
            except TwirpError as exc:
                self._error(exc)

        def do_GET(self) -> None:  # noqa: N802
            path = self.path.split("?")[0]
            if path == "/":
                self._send(200, b"OK", "text/plain")  # LiveKit answers its root with OK (health checks)
                return
            if path in ("/rtc/validate", "/rtc/v1/validate"):
                # What a browser SDK asks after its signal connection failed: is my token good?
                # (This stand-in carries no media, so /rtc itself never upgrades to a WebSocket.)
                query = parse_qs(urlsplit(self.path).query)
                try:
                    stand_in.authorize("Bearer " + (query.get("access_token") or [""])[0])
                except TwirpError as exc:
                    self._send(401, exc.msg.encode(), "text/plain")
                    return
                self._send(200, b"success", "text/plain")
                return
            try:
                claims = stand_in.authorize(self.headers.get("Authorization"))
                if path == "/admin/state":
                    stand_in.need_grant(claims, "room_list")  # every room of the project: never a browser's
                    self._json(200, stand_in.state())
                else:
                    raise TwirpError("bad_route", "no such route")
            except TwirpError as exc:
                self._error(exc)

    return Handler
