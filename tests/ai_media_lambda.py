"""A local endpoint speaking Lambda's Invoke API (`POST /2015-03-31/functions/<name>/invocations`) that
runs the AI media handlers (functions/ai_media) in a process of their own, with the local providers,
as the deployed AiSpeech/AiVision/AiChartsFunction do. Callers reach it through botocore
(`AWS_ENDPOINT_URL_LAMBDA`), so the request, the reply and `X-Amz-Function-Error` go over the wire
exactly as with Lambda.

Run: `python tests/ai_media_lambda.py` prints the port on its first line. A function name ending in
`-crash` fails as an unhandled error does.
"""

from __future__ import annotations

import json
import os
import re
import sys
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

os.environ.update(AI_SPEECH_PROVIDER="local", AI_VISION_PROVIDER="local", AI_CHART_PROVIDER="local")

from ai_media import handler  # noqa: E402 - the providers are set first

HANDLERS = {"speech": handler.transcribe, "vision": handler.read_image, "charts": handler.render_chart}
PATH = re.compile(r"^/2015-03-31/functions/([^/]+)/invocations$")


class Invoke(BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802 - the http.server API
        found = PATH.match(self.path.split("?", 1)[0])
        name = found.group(1) if found else ""
        kind = name.rsplit("-", 1)[-1]
        event = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        error = None
        if kind == "crash":
            error, result = "Unhandled", {"errorMessage": "boom", "errorType": "RuntimeError"}
        elif kind not in HANDLERS:
            body = json.dumps({"Type": "User", "Message": f"Function not found: {name}"}).encode()
            self.send_response(404)
            self.send_header("x-amzn-ErrorType", "ResourceNotFoundException")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        else:
            try:
                result = HANDLERS[kind](event, None)
            except Exception as exc:  # noqa: BLE001 - reported as Lambda reports an unhandled error
                error = "Unhandled"
                result = {
                    "errorMessage": str(exc),
                    "errorType": type(exc).__name__,
                    "stackTrace": traceback.format_exception(exc),
                }
        body = json.dumps(result).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Amz-Executed-Version", "$LATEST")
        if error:
            self.send_header("X-Amz-Function-Error", error)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", 0), Invoke)
    print(server.server_address[1], flush=True)
    # From here on the functions' logs go to stderr, as Lambda's go to its log stream: the caller
    # reads only the port from stdout, and a pipe nobody reads would fill up and block.
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    server.serve_forever()
