"""The init process of one Lambda execution environment, run outside LocalStack (stdlib only).

In AWS (and in LocalStack's Docker executor) a small init inside the sandbox sits between the
Lambda service and the runtime: it receives invokes, serves the Runtime API
(`/2018-06-01/runtime/...`) to the runtime process, enforces the function timeout by killing the
runtime, and reports results and logs back. This is that init for a plain host process:

    LocalStack ExecutorEndpoint --POST /invoke--> this process --Runtime API--> runtime process
    LocalStack ExecutorEndpoint <--/response, /error, /logs, /status-- this process

It reads a JSON spec on stdin (see executor.py) and keeps stdin open: EOF means LocalStack went
away, so the environment goes with it instead of lingering as an orphan.
"""

from __future__ import annotations

import contextlib
import ctypes
import datetime
import http.server
import json
import math
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

RUNTIME_PREFIX = "/2018-06-01/runtime"
# Written by the runtime shim after each invocation (and flushed before it posts the result), so
# the output reader knows it has every log line of that invocation. Control chars keep it from
# colliding with anything a handler would print.
MARKER_PREFIX = b"\x1fverriflo-end "
# Bounded wait for that marker: the pipe is FIFO, so it normally arrives within microseconds.
MARKER_WAIT_S = 2.0
PR_SET_PDEATHSIG = 1

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _diag(message: str) -> None:
    """Diagnostics for LocalStack's log (the executor forwards this process's stderr)."""
    sys.stderr.write(f"[supervisor] {message}\n")
    sys.stderr.flush()


def _kill_with_parent() -> None:
    """Runs in the runtime child before exec: if this supervisor dies (even by SIGKILL), the kernel
    kills the runtime too, so no handler process outlives its environment."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


class Invocation:
    def __init__(self, request_id: str, arn: str, payload: bytes, trace_id: str, timeout_s: float):
        self.request_id = request_id
        self.arn = arn
        self.payload = payload
        self.trace_id = trace_id
        self.received = time.monotonic()
        self.deadline_epoch_ms = int((time.time() + timeout_s) * 1000)
        self.started: float | None = None
        self.finished = False
        self.marker_seen = threading.Event()
        self.timer: threading.Timer | None = None
        self.runtime: Runtime | None = None


class Runtime:
    """One runtime process (one 'init' of the environment)."""

    def __init__(self, proc: subprocess.Popen):
        self.proc = proc
        self.invocations: queue.Queue[Invocation | None] = queue.Queue()
        self.ready = False
        self.init_started = time.monotonic()
        self.init_duration_ms: float | None = None
        self.init_reported = False
        # set before the init kills it on a timeout, so its exit is not reported as a crash
        self.killed = False


class Supervisor:
    def __init__(self, spec: dict):
        self.spec = spec
        self.endpoint = spec["runtime_endpoint"].rstrip("/")
        self.env_id = spec["runtime_id"]
        self.timeout_s = float(spec["timeout"])
        self.lock = threading.RLock()
        self.runtime: Runtime | None = None
        self.current: Invocation | None = None
        self.logs: list[str] = []
        self.startup_reported = False
        self.stopping = threading.Event()
        # Runtimes are spawned only by the main thread: PR_SET_PDEATHSIG fires when the *thread*
        # that forked the child ends, and HTTP handler threads end after each request.
        self.spawn_requests: queue.Queue[queue.Queue | None] = queue.Queue()

    def request_stop(self) -> None:
        self.stopping.set()
        self.spawn_requests.put(None)  # wakes the main thread

    # ---- reporting to LocalStack -------------------------------------------------------------
    def _post(self, path: str, body: bytes, content_type: str = "application/json") -> None:
        # the endpoint is LocalStack's own http:// runtime endpoint, handed over by the executor
        req = urllib.request.Request(  # noqa: S310
            f"{self.endpoint}{path}", data=body, method="POST", headers={"Content-Type": content_type}
        )
        try:
            with _OPENER.open(req, timeout=30) as resp:
                resp.read()
        except OSError as exc:
            _diag(f"posting {path} to LocalStack failed: {exc}")

    def _report_result(self, inv: Invocation, body: bytes, is_error: bool, extra_log: str = "") -> None:
        """Send the invocation's logs, then its result (the ExecutorEndpoint attaches the logs it
        got last to the result, and LocalStack ships them to CloudWatch Logs)."""
        with self.lock:
            if inv.finished:
                return
            inv.finished = True
            if inv.timer:
                inv.timer.cancel()
            if self.current is inv:
                self.current = None
            lines = self.logs
            self.logs = []
            runtime = self.runtime
        duration_ms = (time.monotonic() - (inv.started or inv.received)) * 1000
        report = [
            f"REPORT RequestId: {inv.request_id}",
            f"Duration: {duration_ms:.2f} ms",
            f"Billed Duration: {math.ceil(duration_ms)} ms",
            f"Memory Size: {self.spec['memory_size']} MB",
        ]
        if runtime and (max_used := _max_memory_mb(runtime.proc.pid)) is not None:
            report.append(f"Max Memory Used: {max_used} MB")
        if runtime and runtime.init_duration_ms is not None and not runtime.init_reported:
            runtime.init_reported = True
            report.append(f"Init Duration: {runtime.init_duration_ms:.2f} ms")
        text = "".join(lines)
        if extra_log:
            text += extra_log if extra_log.endswith("\n") else extra_log + "\n"
        text += f"END RequestId: {inv.request_id}\n" + "\t".join(report) + "\n"
        self._post(f"/invocations/{inv.request_id}/logs", json.dumps({"logs": text}).encode())
        kind = "error" if is_error else "response"
        self._post(f"/invocations/{inv.request_id}/{kind}", body)

    def _report_startup_error(self, body: bytes) -> None:
        with self.lock:
            if self.startup_reported:
                return
            self.startup_reported = True
        self._post(f"/status/{self.env_id}/error", body)

    # ---- the runtime process -----------------------------------------------------------------
    def spawn(self) -> Runtime:
        env = dict(self.spec["env"])
        env["AWS_LAMBDA_RUNTIME_API"] = f"127.0.0.1:{self.port}"
        proc = subprocess.Popen(  # noqa: S603 - command comes from the executor, not from users
            self.spec["command"],
            cwd=self.spec["cwd"],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            # own process group: a timeout kills the handler and anything it started
            start_new_session=True,
            preexec_fn=_kill_with_parent,  # noqa: PLW1509 - only sets PDEATHSIG
        )
        runtime = Runtime(proc)
        threading.Thread(target=self._read_output, args=(runtime,), daemon=True).start()
        threading.Thread(target=self._watch_exit, args=(runtime,), daemon=True).start()
        return runtime

    def _read_output(self, runtime: Runtime) -> None:
        for raw in runtime.proc.stdout:
            idx = raw.find(MARKER_PREFIX)
            if idx >= 0:
                request_id = raw[idx + len(MARKER_PREFIX) :].strip(b"\x1f\r\n").decode(errors="replace")
                raw = raw[:idx]
                if raw:
                    self._append_log(raw)
                with self.lock:
                    inv = self.current
                if inv is not None and inv.request_id == request_id:
                    inv.marker_seen.set()
                continue
            self._append_log(raw)

    def _append_log(self, raw: bytes) -> None:
        line = raw.decode(errors="replace")
        if not line.endswith("\n"):
            line += "\n"
        sys.stderr.write(line)  # also visible in LocalStack's own log, as with Docker
        with self.lock:
            self.logs.append(line)

    def _watch_exit(self, runtime: Runtime) -> None:
        code = runtime.proc.wait()
        runtime.invocations.put(None)  # release a /next still waiting for this runtime
        with self.lock:
            if self.runtime is runtime:
                self.runtime = None
            inv = self.current
            was_ready = runtime.ready
        if self.stopping.is_set() or runtime.killed:
            return
        reason = f"signal: {signal.Signals(-code).name.lower()}" if code < 0 else f"exit status {code}"
        if not was_ready and not self.startup_reported:
            self._report_startup_error(
                json.dumps(
                    {"errorType": "Runtime.ExitError", "errorMessage": f"Runtime exited with error: {reason}"}
                ).encode()
            )
            return
        if inv is not None and inv.runtime is runtime and not inv.finished:
            message = f"RequestId: {inv.request_id} Error: Runtime exited with error: {reason}"
            body = json.dumps({"errorType": "Runtime.ExitError", "errorMessage": message}).encode()
            self._report_result(inv, body, is_error=True, extra_log=message)

    def _kill_runtime(self, runtime: Runtime) -> None:
        runtime.killed = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(runtime.proc.pid, signal.SIGKILL)
        runtime.proc.wait()

    # ---- invocations -------------------------------------------------------------------------
    def invoke(self, payload: dict) -> None:
        inv = Invocation(
            request_id=payload["invoke-id"],
            arn=payload["invoked-function-arn"],
            payload=payload["payload"].encode(),
            trace_id=payload.get("trace-id") or "",
            timeout_s=self.timeout_s,
        )
        with self.lock:
            self.current = inv
            runtime = self.runtime
        if runtime is None:
            # the previous runtime was killed (timeout) or crashed: AWS re-initialises the
            # environment on the next invoke, inside that invoke's time budget
            runtime = self._spawn_on_main_thread()
        with self.lock:
            self.runtime = runtime
            inv.runtime = runtime
            inv.timer = threading.Timer(self.timeout_s, self._on_timeout, args=(inv, runtime))
            inv.timer.daemon = True
            inv.timer.start()
        runtime.invocations.put(inv)

    def _spawn_on_main_thread(self) -> Runtime:
        reply: queue.Queue = queue.Queue()
        self.spawn_requests.put(reply)
        result = reply.get()
        if isinstance(result, BaseException):
            raise result
        return result

    def _on_timeout(self, inv: Invocation, runtime: Runtime) -> None:
        with self.lock:
            if inv.finished:
                return
            if self.runtime is runtime:
                self.runtime = None
        self._kill_runtime(runtime)
        stamp = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        message = f"RequestId: {inv.request_id} Error: Task timed out after {self.timeout_s:.2f} seconds"
        body = json.dumps({"errorType": "Sandbox.Timedout", "errorMessage": message}).encode()
        self._report_result(
            inv,
            body,
            is_error=True,
            extra_log=f"{stamp} {inv.request_id} Task timed out after {self.timeout_s:.2f} seconds",
        )

    def next_invocation(self) -> Invocation | None:
        with self.lock:
            runtime = self.runtime
        if runtime is None:
            return None
        if not runtime.ready:
            runtime.ready = True
            runtime.init_duration_ms = (time.monotonic() - runtime.init_started) * 1000
            report_ready = False
            with self.lock:
                if not self.startup_reported:
                    self.startup_reported = True
                    report_ready = True
            if report_ready:
                self._post(f"/status/{self.env_id}/ready", b"{}")
        inv = runtime.invocations.get()
        if inv is not None:
            inv.started = time.monotonic()
            with self.lock:
                # output so far belongs to the init phase, which AWS logs before START
                self.logs.append(f"START RequestId: {inv.request_id} Version: {self.spec['version']}\n")
        return inv

    def finish(self, request_id: str, body: bytes, is_error: bool) -> bool:
        with self.lock:
            inv = self.current
        if inv is None or inv.request_id != request_id:
            return False
        inv.marker_seen.wait(MARKER_WAIT_S)
        self._report_result(inv, body, is_error)
        return True

    def init_error(self, body: bytes) -> None:
        with self.lock:
            inv = self.current
        if not self.startup_reported:
            self._report_startup_error(body)
        elif inv is not None:
            # a re-init (after a timeout or crash) failed: that invoke gets the init error
            self._report_result(inv, body, is_error=True)

    # ---- lifecycle ---------------------------------------------------------------------------
    def serve(self) -> None:
        listener = socket.socket(fileno=self.spec["listen_fd"])
        self.port = listener.getsockname()[1]
        server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), _handler_for(self), False)
        server.socket = listener
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        with self.lock:
            self.runtime = self.spawn()
        while (reply := self.spawn_requests.get()) is not None:
            try:
                reply.put(self.spawn())
            except OSError as exc:
                reply.put(exc)
        with self.lock:
            runtime = self.runtime
        if runtime is not None:
            self._kill_runtime(runtime)
        server.shutdown()


def _max_memory_mb(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return math.ceil(int(line.split()[1]) / 1024)
    except OSError:
        return None
    return None


def _handler_for(sup: Supervisor):
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 - signature fixed by the base class
            pass  # one line per request would drown the function's own logs

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _reply(self, status: int, body: bytes = b"", headers: dict | None = None) -> None:
            self.send_response(status)
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body:
                self.wfile.write(body)

        def do_GET(self):  # noqa: N802 - http.server naming
            if self.path != f"{RUNTIME_PREFIX}/invocation/next":
                return self._reply(404)
            inv = sup.next_invocation()
            if inv is None:
                return self._reply(500, b'{"errorType":"Runtime.Stopped"}')
            headers = {
                "Content-Type": "application/json",
                "Lambda-Runtime-Aws-Request-Id": inv.request_id,
                "Lambda-Runtime-Deadline-Ms": str(inv.deadline_epoch_ms),
                "Lambda-Runtime-Invoked-Function-Arn": inv.arn,
                "Lambda-Runtime-Trace-Id": inv.trace_id,
            }
            return self._reply(200, inv.payload, headers)

        def do_POST(self):  # noqa: N802 - http.server naming
            body = self._body()
            path = self.path
            if path == "/invoke":
                sup.invoke(json.loads(body))
                return self._reply(202)
            if path == f"{RUNTIME_PREFIX}/init/error":
                sup.init_error(body)
                return self._reply(202, b'{"status":"OK"}')
            prefix = f"{RUNTIME_PREFIX}/invocation/"
            if path.startswith(prefix):
                request_id, _, kind = path[len(prefix) :].partition("/")
                if kind in ("response", "error"):
                    if sup.finish(request_id, body, is_error=kind == "error"):
                        return self._reply(202, b'{"status":"OK"}')
                    # late result of an invocation that already timed out
                    return self._reply(400, b'{"errorType":"InvalidRequestID"}')
            return self._reply(404)

    return Handler


def main() -> None:
    spec = json.loads(sys.stdin.readline())
    sup = Supervisor(spec)

    def watch_stdin() -> None:
        sys.stdin.read()  # returns at EOF: LocalStack closed the pipe or died
        sup.request_stop()

    threading.Thread(target=watch_stdin, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: sup.request_stop())
    sup.serve()


if __name__ == "__main__":
    main()
