"""Real HTTP receivers on loopback for webhook tests: they answer 200, 500 or 410, stall past the
client's timeout, or close the connection without answering; every request is recorded."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: str
    at: float


@dataclass
class Receivers:
    server: ThreadingHTTPServer
    received: list[Received] = field(default_factory=list)
    stall_s: float = 3.0
    # When set, a "slow" receiver stalls until this is set (at most stall_s) instead of sleeping,
    # and records in `released` whether it was let go before stall_s ran out.
    release: threading.Event | None = None
    released: list[bool] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def url(self, behaviour: str) -> str:
        return f"{self.base}/{behaviour}"

    def to(self, behaviour: str) -> list[Received]:
        return [r for r in self.received if r.path == f"/{behaviour}"]

    def wait_for(self, count: int, timeout: float = 5.0) -> list[Received]:
        """Bounded polling until `count` requests have arrived."""
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.received


def start_receivers() -> Receivers:
    state: dict[str, Receivers] = {}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body in one write: two small writes meet Nagle and delayed ACKs (+40 ms each).
        wbufsize = 65_536

        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length).decode()
            receivers = state["r"]
            receivers.received.append(
                Received(
                    self.path.split("?")[0],
                    {k.lower(): v for k, v in self.headers.items()},
                    body,
                    time.monotonic(),
                )
            )
            behaviour = self.path.strip("/").split("?")[0]
            if behaviour == "close":
                self.close_connection = True
                self.connection.shutdown(2)
                return
            if behaviour == "slow":
                if receivers.release is None:
                    time.sleep(receivers.stall_s)
                else:
                    receivers.released.append(receivers.release.wait(receivers.stall_s))
            status = {"fail": 500, "gone": 410}.get(behaviour, 200)
            reply = b'{"received": true}' if status == 200 else b"nope"
            self.send_response(status)
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receivers = Receivers(server)
    state["r"] = receivers
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return receivers
