"""Fixtures and helpers for the live-classroom tests: the LiveKit stand-in (in-process, so moto
sees its S3 uploads), a receiver that collects the webhooks it signs, and credits for orgs."""

from __future__ import annotations

import json
import queue
import secrets
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from support import ROOT, EventTap, api_event, call, tap_events

RECORDINGS_BUCKET = "verriflo-test-recordings"
LIVE_UI = "http://127.0.0.1:4566/verriflo-test-live"


@dataclass
class Delivery:
    body: str
    headers: dict[str, str]

    @property
    def event(self) -> str:
        return json.loads(self.body).get("event", "")


@dataclass
class LiveKit:
    """The running stand-in, its credentials, and the webhooks it delivered."""

    url: str
    api_key: str
    api_secret: str
    stand_in: Any
    inbox: queue.Queue[Delivery] = field(default_factory=queue.Queue)

    def signed(self, event: Any) -> Delivery:
        """A delivery of `event` (a livekit.protocol WebhookEvent), signed as the stand-in signs its own."""
        from google.protobuf import json_format

        body = json_format.MessageToJson(event, indent=None)
        return Delivery(body, {"Authorization": self.stand_in.sign(body)})

    def server_token(self, grants: Any) -> str:
        """A token our server side would mint with the project's key (never a browser's)."""
        from livekit.api import AccessToken

        return AccessToken(self.api_key, self.api_secret).with_grants(grants).to_jwt()

    def admin(self, method: str, path: str, body: Any = None, *, token: str) -> Any:
        """Call an admin route of the stand-in (simulated participants and egress) as `token`."""
        return stand_in_call(self.url, method, path, body, token)

    def join(self, room_name: str, token: str, tracks: list[dict[str, str]] | None = None) -> dict[str, Any]:
        """A browser connects with its join token."""
        return self.admin(
            "POST",
            f"/admin/rooms/{room_name}/participants",
            {"token": token, "tracks": tracks or []},
            token=token,
        )

    def leave(self, room_name: str, identity: str) -> None:
        """A participant disconnects (as the room's admin says so)."""
        from livekit.api import VideoGrants

        token = self.server_token(VideoGrants(room_admin=True, room=room_name))
        self.admin("DELETE", f"/admin/rooms/{room_name}/participants/{identity}", token=token)

    def wait_for(self, *names: str, timeout: float = 20.0) -> list[Delivery]:
        """Collect deliveries until each of `names` was seen (bounded polling), in arrival order."""
        wanted = list(names)
        got: list[Delivery] = []
        deadline = time.monotonic() + timeout
        while wanted:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"webhooks {wanted} not delivered; got {[d.event for d in got]}")
            try:
                delivery = self.inbox.get(timeout=remaining)
            except queue.Empty:
                continue
            got.append(delivery)
            if delivery.event in wanted:
                wanted.remove(delivery.event)
        return got

    def pump(self, handler: Callable[..., Any], ctx: Any, *names: str, timeout: float = 20.0) -> list[Any]:
        """Feed the webhooks up to `names` into the rooms handler, as API Gateway would; the replies."""
        return [deliver(handler, ctx, d) for d in self.wait_for(*names, timeout=timeout)]


def stand_in_call(url: str, method: str, path: str, body: Any, token: str) -> Any:
    """One admin or Twirp (JSON) call to a LiveKit stand-in at `url`; HTTPError on refusal."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(  # noqa: S310 - http URLs we were given
        url + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310
        return json.loads(reply.read() or b"{}")


def twirp(url: str, method: str, body: dict, token: str, service: str = "RoomService") -> tuple[int, dict]:
    """One JSON Twirp call to LiveKit (the stand-in) as `token`: the status and the answer."""
    request = urllib.request.Request(  # noqa: S310 - the local stand-in
        f"{url}/twirp/livekit.{service}/{method}",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:  # noqa: S310
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def only_room_scoped_grants(claims: Any) -> bool:
    """A join token's claims carry no grant LiveKit checks project-wide (roomRecord, roomCreate,
    roomList, ingressAdmin) and no right to rewrite the holder's own metadata."""
    video = claims.video
    wide = (video.room_record, video.room_create, video.room_list, video.ingress_admin)
    return not any(wide) and not video.can_update_own_metadata and bool(video.room)


def rooms_event(name: str, headers: dict[str, str], body: Any = None, **params: str) -> dict[str, Any]:
    """A rooms sample event with its path parameters (and so its path) replaced."""
    from support import load_event

    path = load_event(f"rooms/{name}.json")["resource"]
    for key, value in params.items():
        path = path.replace("{" + key + "}", value)
    return api_event(f"rooms/{name}.json", headers=headers, body=body, path=path, path_params=params or None)


def deliver(handler: Callable[..., Any], ctx: Any, delivery: Delivery) -> Any:
    """One webhook delivery through the rooms handler."""
    event = api_event("rooms/livekit_webhook.json", headers=delivery.headers, raw_body=delivery.body)
    return call(handler, event, ctx)


class _Receiver(BaseHTTPRequestHandler):
    inbox: queue.Queue[Delivery]

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        self.inbox.put(
            Delivery(
                body,
                {
                    "Authorization": self.headers.get("Authorization", ""),
                    "Content-Type": self.headers.get("Content-Type", ""),
                },
            )
        )
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


@pytest.fixture
def livekit(aws_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveKit]:
    """A LiveKit stand-in for this test, wired to the rooms function through settings and a secret."""
    import boto3
    from rooms import lk
    from rooms.config import live_settings
    from verriflo.media import media_settings

    from standins.livekit import StandIn

    key, secret = "APItest" + secrets.token_hex(4), secrets.token_urlsafe(32)
    inbox: queue.Queue[Delivery] = queue.Queue()
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), type("Receiver", (_Receiver,), {"inbox": inbox}))
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    stand_in = StandIn(
        key,
        secret,
        webhook_urls=[f"http://127.0.0.1:{receiver.server_address[1]}/hook"],
        recording_seconds=1.0,
    ).start()
    boto3.client("secretsmanager").create_secret(
        Name="verriflo/livekit", SecretString=json.dumps({"apiKey": key, "apiSecret": secret})
    )
    boto3.client("s3").create_bucket(Bucket=RECORDINGS_BUCKET)
    monkeypatch.setenv("LIVEKIT_URL", stand_in.url)
    monkeypatch.setenv("LIVE_UI_URL", LIVE_UI)
    monkeypatch.setenv("RECORDINGS_BUCKET", RECORDINGS_BUCKET)
    live_settings.cache_clear()
    media_settings.cache_clear()
    lk.reset()
    yield LiveKit(stand_in.url, key, secret, stand_in, inbox)
    stand_in.stop()
    receiver.shutdown()
    receiver.server_close()
    live_settings.cache_clear()
    lk.reset()


def fund(org_id: str, credits: int = 1000) -> None:
    """Give an org credits (a grant in the ledger)."""
    from verriflo import ledger

    ledger.grant(
        ledger.UsageEvent(
            entry_id=f"grant-{secrets.token_hex(4)}", org_id=org_id, service="grant", credits=credits
        )
    )


@pytest.fixture
def event_tap(aws_env: None) -> EventTap:
    """Every domain event the functions publish during the test."""
    return tap_events()


# --- the classroom page ---------------------------------------------------------------------------

LIVE = ROOT / "live"


@pytest.fixture(scope="session")
def built_page() -> Path:
    """live/dist, built now from the sources (npm ci first if node_modules is missing)."""
    import shutil
    import subprocess

    if not shutil.which("node") or not Path("/usr/bin/chromium").exists():
        pytest.fail("the page tests need node and Debian chromium (make deps installs them)")
    if not (LIVE / "node_modules" / "livekit-client").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=LIVE, check=True, timeout=300)
    subprocess.run(["node", "build.mjs"], cwd=LIVE, check=True, timeout=120, capture_output=True)
    return LIVE / "dist"


class StaticPage(SimpleHTTPRequestHandler):
    """Serves files as the page bucket does: the object `iframe/live` is HTML."""

    def guess_type(self, path):  # noqa: ANN001 - http.server's signature
        return "text/html; charset=utf-8" if str(path).endswith("/iframe/live") else super().guess_type(path)

    def log_message(self, *args):  # noqa: ANN002
        pass


@contextmanager
def serve_page(built: Path, config: dict[str, Any], tmp: Path) -> Iterator[str]:
    """The built page under the bucket's path (LIVE_UI's), with this config.json; yields the origin."""
    import shutil

    root = tmp / "site"
    prefix = root / urlsplit(LIVE_UI).path.strip("/")
    shutil.copytree(built, prefix)
    (prefix / "iframe" / "config.json").write_text(json.dumps(config))
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(StaticPage, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run_page_script(script: str, options: dict[str, Any]) -> dict[str, Any]:
    """Run one of live/test's Chromium drivers with its options; the JSON it printed last."""
    import subprocess

    reply = subprocess.run(
        ["node", str(LIVE / "test" / script), json.dumps(options)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert reply.returncode == 0, reply.stderr[-2000:]
    return json.loads(reply.stdout.strip().splitlines()[-1])
