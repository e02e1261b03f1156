"""Runtime-interface client for Python handlers: the loop AWS's Python runtime runs (stdlib only).

Run as a script by the runtime's own interpreter (a clean venv holding only boto3, like AWS's
`/var/lang`). It talks only to the Runtime API at AWS_LAMBDA_RUNTIME_API, exactly as in AWS, so
the handler sees the same protocol, environment and `context` object it gets there.
"""

from __future__ import annotations

import http.client
import importlib
import json
import logging
import os
import sys
import time
import traceback

API_PREFIX = "/2018-06-01/runtime"
MARKER_PREFIX = b"\x1fverriflo-end "


class _RequestIdFilter(logging.Filter):
    request_id = ""

    def filter(self, record):
        record.aws_request_id = self.request_id
        return True


_REQUEST_ID_FILTER = _RequestIdFilter()


class LambdaContext:
    """The `context` argument, with the attributes and method AWS documents."""

    def __init__(self, request_id: str, deadline_ms: int, invoked_arn: str, headers):
        env = os.environ
        self.aws_request_id = request_id
        self.invoked_function_arn = invoked_arn
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.memory_limit_in_mb = env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self._deadline_ms = deadline_ms
        self.identity = _json_header(headers, "Lambda-Runtime-Cognito-Identity")
        self.client_context = _json_header(headers, "Lambda-Runtime-Client-Context")
        self.tenant_id = headers.get("Lambda-Runtime-Aws-Tenant-Id")

    def get_remaining_time_in_millis(self) -> int:
        return max(self._deadline_ms - int(time.time() * 1000), 0)

    def log(self, msg: str) -> None:
        sys.stdout.write(msg)


def _json_header(headers, name):
    value = headers.get(name)
    return json.loads(value) if value else None


class _Api:
    def __init__(self, address: str):
        host, _, port = address.partition(":")
        self.host, self.port = host, int(port or 80)

    def request(self, method: str, path: str, body: bytes | None = None, headers=None):
        # a fresh connection per call: the init's server speaks HTTP/1.0 and a blocking /next can
        # outlive any keep-alive timeout
        conn = http.client.HTTPConnection(self.host, self.port)
        try:
            conn.request(method, API_PREFIX + path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, resp.headers, resp.read()
        finally:
            conn.close()


def _error_body(exc: BaseException, error_type: str | None = None, request_id: str | None = None) -> dict:
    body = {
        "errorMessage": str(exc),
        "errorType": error_type or type(exc).__name__,
        # the runtime's own frames are not the user's business (AWS leaves them out too)
        "stackTrace": traceback.format_list(
            [f for f in traceback.extract_tb(exc.__traceback__) if f.filename != __file__]
        ),
    }
    if request_id:
        body["requestId"] = request_id
    return body


def _log_error(body: dict, exc: BaseException) -> None:
    # AWS prints the failure as one log record, with the traceback
    trace = "".join(traceback.format_exception(exc))
    sys.stdout.write(f"[ERROR] {body['errorType']}: {body['errorMessage']}\n{trace}")
    sys.stdout.flush()


class _InitError(Exception):
    def __init__(self, error_type: str, message: str):
        super().__init__(message)
        self.error_type = error_type


def _load_handler(spec: str):
    module_name, _, function_name = spec.rpartition(".")
    if not module_name or not function_name:
        raise _InitError("Runtime.MalformedHandlerName", f"Bad handler '{spec}': not enough values to unpack")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except SyntaxError as exc:
        raise _InitError(
            "Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}"
        ) from exc
    except ImportError as exc:
        raise _InitError(
            "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}"
        ) from exc
    handler = getattr(module, function_name, None)
    if handler is None:
        raise _InitError(
            "Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'"
        )
    return handler


def _configure_logging() -> None:
    # same record layout as the AWS Python runtime's root handler
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n",
            "%Y-%m-%dT%H:%M:%S",
        )
    )
    handler.formatter.converter = time.gmtime
    handler.terminator = ""
    handler.addFilter(_REQUEST_ID_FILTER)
    root = logging.getLogger()
    root.addHandler(handler)
    if level := os.environ.get("AWS_LAMBDA_LOG_LEVEL"):
        root.setLevel(level.upper())


def _end_of_invocation(request_id: str) -> None:
    """Flush, then tell the init that every line of this invocation is in the pipe."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.write(1, MARKER_PREFIX + request_id.encode() + b"\x1f\n")


def main() -> None:
    task_root = os.environ["LAMBDA_TASK_ROOT"]
    # sys.path[0] is this script's folder; AWS puts the task root first instead
    sys.path[0] = task_root
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)
    _configure_logging()
    api = _Api(os.environ["AWS_LAMBDA_RUNTIME_API"])

    try:
        handler = _load_handler(os.environ["_HANDLER"])
    except _InitError as exc:
        body = _error_body(exc, exc.error_type)
        body["stackTrace"] = []
        _log_error(body, exc.__cause__ or exc)
        api.request(
            "POST",
            "/init/error",
            json.dumps(body).encode(),
            {"Lambda-Runtime-Function-Error-Type": exc.error_type},
        )
        sys.exit(1)
    except Exception as exc:  # noqa: BLE001 - any failure while importing user code is an init error
        body = _error_body(exc)
        _log_error(body, exc)
        api.request(
            "POST",
            "/init/error",
            json.dumps(body).encode(),
            {"Lambda-Runtime-Function-Error-Type": body["errorType"]},
        )
        sys.exit(1)

    while True:
        status, headers, payload = api.request("GET", "/invocation/next")
        if status != 200:
            sys.exit(0)  # the environment is shutting down
        request_id = headers["Lambda-Runtime-Aws-Request-Id"]
        _REQUEST_ID_FILTER.request_id = request_id
        if trace_id := headers.get("Lambda-Runtime-Trace-Id"):
            os.environ["_X_AMZN_TRACE_ID"] = trace_id
        else:
            os.environ.pop("_X_AMZN_TRACE_ID", None)
        context = LambdaContext(
            request_id,
            int(headers.get("Lambda-Runtime-Deadline-Ms") or 0),
            headers.get("Lambda-Runtime-Invoked-Function-Arn", ""),
            headers,
        )
        try:
            event = json.loads(payload) if payload else None
            result = handler(event, context)
            try:
                out = json.dumps(result).encode()
            except (TypeError, ValueError) as exc:
                raise _InitError("Runtime.MarshalError", f"Unable to marshal response: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - the runtime reports every handler failure
            error_type = exc.error_type if isinstance(exc, _InitError) else None
            body = _error_body(exc, error_type, request_id)
            _log_error(body, exc)
            _end_of_invocation(request_id)
            api.request(
                "POST",
                f"/invocation/{request_id}/error",
                json.dumps(body).encode(),
                {"Lambda-Runtime-Function-Error-Type": body["errorType"], "Content-Type": "application/json"},
            )
            continue
        _end_of_invocation(request_id)
        api.request("POST", f"/invocation/{request_id}/response", out, {"Content-Type": "application/json"})


if __name__ == "__main__":
    main()
