"""A LocalStack Lambda runtime executor that runs each execution environment as host processes.

The free LocalStack runs Lambda code only in Docker containers; there is no Docker engine here.
This executor keeps LocalStack's side of the contract unchanged (its `ExecutorEndpoint` sends
invokes and receives results, logs and status exactly as from the Docker init) and replaces the
container with two processes per environment:

* the init (`supervisor.py`, run by LocalStack's interpreter): Runtime API server, timeouts,
  log capture; it reports back to the ExecutorEndpoint over HTTP like the Docker init;
* the runtime (`runtime/bootstrap.py`, run by the runtime's interpreter, e.g. a clean
  python3.13 venv with only boto3): imports the handler and loops over the Runtime API.

What a container gave for free is rebuilt here: the function's own environment only (not
LocalStack's), layers on the import path in AWS's order, the timeout enforced by killing the
runtime, logs to CloudWatch Logs (via the ExecutorEndpoint, as LocalStack does for Docker).
"""

from __future__ import annotations

import collections
import json
import logging
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

from localstack.aws.api.lambda_ import PackageType
from localstack.services.lambda_.invocation.executor_endpoint import (
    ExecutorEndpoint,
    StatusErrorException,
)
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.runtime_executor import (
    LambdaRuntimeException,
    RuntimeExecutor,
)

from localstack import config

LOG = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
SUPERVISOR = PACKAGE_DIR / "supervisor.py"
BOOTSTRAP = PACKAGE_DIR / "runtime" / "bootstrap.py"

# Runtime name -> interpreter, e.g. {"python3.13": "/repo/.venv-lambda-python3.13/bin/python"}.
# One interpreter per runtime, chosen by whoever starts LocalStack (localstack/start.sh).
RUNTIMES_ENV = "VERRIFLO_LAMBDA_RUNTIMES"

# Variables of LocalStack's environment list that a real Lambda runtime also has; the rest
# (LOCALSTACK_*, EDGE_PORT, ...) are for LocalStack's own init and stay out of the function.
_REAL_RUNTIME_VARS = {"_HANDLER", "TZ", "_AWS_XRAY_DAEMON_ADDRESS", "_AWS_XRAY_DAEMON_PORT"}
_REAL_RUNTIME_PREFIXES = ("AWS_", "LAMBDA_")
_SYSTEM_PATH = "/usr/local/bin:/usr/bin:/bin"
_LOG_TAIL_LINES = 500


def runtime_interpreters() -> dict[str, str]:
    raw = os.environ.get(RUNTIMES_ENV, "")
    try:
        mapping = json.loads(raw) if raw else {}
    except json.JSONDecodeError as exc:
        raise LambdaRuntimeException(f"{RUNTIMES_ENV} is not valid JSON: {exc}") from exc
    return {str(k): str(v) for k, v in mapping.items()}


def interpreter_for(runtime: str | None) -> str:
    interpreter = runtime_interpreters().get(runtime or "")
    if not interpreter:
        raise LambdaRuntimeException(
            f"No interpreter configured for runtime {runtime!r}: set {RUNTIMES_ENV} when starting LocalStack"
        )
    if not os.access(interpreter, os.X_OK):
        raise LambdaRuntimeException(f"Interpreter for runtime {runtime!r} is not executable: {interpreter}")
    return interpreter


def _python_tag(runtime: str) -> str:
    return runtime if runtime.startswith("python") else ""


def layer_paths(function_version: FunctionVersion) -> dict[str, list[str]]:
    """Where AWS would find each layer's content under /opt, as host folders.

    AWS extracts the layers into /opt in the listed order, a later layer overwriting an earlier
    one; so on every search path a later layer comes first. For Python, all layers'
    `python/lib/pythonX.Y/site-packages` come before all layers' `python` (AWS's sys.path order).
    """
    runtime = _python_tag(function_version.config.runtime or "")
    site_packages, python_dirs, bin_dirs, lib_dirs = [], [], [], []
    for layer in reversed(function_version.config.layers or []):
        if not layer.code:
            continue
        root = Path(layer.code.get_unzipped_code_location())
        if runtime and (sp := root / "python" / "lib" / runtime / "site-packages").is_dir():
            site_packages.append(str(sp))
        if (root / "python").is_dir():
            python_dirs.append(str(root / "python"))
        if (root / "bin").is_dir():
            bin_dirs.append(str(root / "bin"))
        if (root / "lib").is_dir():
            lib_dirs.append(str(root / "lib"))
    return {"pythonpath": site_packages + python_dirs, "bin": bin_dirs, "lib": lib_dirs}


def runtime_environment(
    function_version: FunctionVersion, env_vars: dict, interpreter: str
) -> dict[str, str]:
    """The runtime's whole environment: what AWS sets plus the function's own variables; nothing
    from the LocalStack process (its PATH, credentials, settings) leaks into a function."""
    task_root = str(function_version.config.code.get_unzipped_code_location())
    layers = layer_paths(function_version)
    env = {
        k: str(v)
        for k, v in env_vars.items()
        if k in _REAL_RUNTIME_VARS or k.startswith(_REAL_RUNTIME_PREFIXES)
    }
    runtime = function_version.config.runtime or ""
    env.update(
        {
            "LAMBDA_TASK_ROOT": task_root,
            "LAMBDA_RUNTIME_DIR": str(BOOTSTRAP.parent),
            "AWS_EXECUTION_ENV": f"AWS_Lambda_{runtime}",
            "LANG": "en_US.UTF-8",
            # AWS: /var/lang/bin first, /opt/bin (layers) last
            "PATH": ":".join([str(Path(interpreter).parent), _SYSTEM_PATH, *layers["bin"]]),
            "LD_LIBRARY_PATH": ":".join([task_root, str(Path(task_root) / "lib"), *layers["lib"]]),
            "PYTHONPATH": ":".join(layers["pythonpath"]),
        }
    )
    # the function's configured variables win, as LocalStack and AWS order them
    env.update({k: str(v) for k, v in (function_version.config.environment or {}).items()})
    return env


class ProcessRuntimeExecutor(RuntimeExecutor):
    """One execution environment = one init process + one runtime process on the host."""

    def __init__(self, id: str, function_version: FunctionVersion) -> None:  # noqa: A002 - base signature
        super().__init__(id=id, function_version=function_version)
        self.executor_endpoint = ExecutorEndpoint(self.id)
        self._process: subprocess.Popen | None = None
        self._stopping = threading.Event()
        self._log_tail: collections.deque[str] = collections.deque(maxlen=_LOG_TAIL_LINES)

    # -- lifecycle -----------------------------------------------------------------------------
    def start(self, env_vars: dict[str, str]) -> None:
        fv = self.function_version
        interpreter = interpreter_for(fv.config.runtime)
        self.executor_endpoint.start()
        # LocalStack's endpoint posts invokes to this socket. Binding it here (port 0) and handing
        # the open socket to the init avoids any free-port race.
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        self.executor_endpoint.container_address = "127.0.0.1"
        self.executor_endpoint.container_port = listener.getsockname()[1]
        spec = {
            "runtime_endpoint": self.get_runtime_endpoint(),
            "runtime_id": self.id,
            "listen_fd": listener.fileno(),
            "command": [interpreter, str(BOOTSTRAP)],
            "cwd": str(fv.config.code.get_unzipped_code_location()),
            "env": runtime_environment(fv, env_vars, interpreter),
            "timeout": fv.config.timeout,
            "memory_size": fv.config.memory_size,
            "version": fv.id.qualifier,
        }
        try:
            self._process = subprocess.Popen(  # noqa: S603 - fixed command
                [sys.executable, "-I", str(SUPERVISOR)],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                pass_fds=(listener.fileno(),),
                # its own group, so stop() can end the init without touching LocalStack
                start_new_session=True,
                env={"PATH": _SYSTEM_PATH, "LANG": "C.UTF-8"},
                text=True,
            )
        finally:
            listener.close()  # the child holds its own copy
        self._process.stdin.write(json.dumps(spec) + "\n")
        self._process.stdin.flush()
        threading.Thread(target=self._pump_logs, daemon=True, name=f"lambda-log-{self.id}").start()
        threading.Thread(target=self._watch, daemon=True, name=f"lambda-watch-{self.id}").start()
        self.executor_endpoint.wait_for_startup()

    def _pump_logs(self) -> None:
        for line in self._process.stderr:
            self._log_tail.append(line)
            LOG.debug("[lambda %s] %s", self.id, line.rstrip("\n"))

    def _watch(self) -> None:
        """If the init dies, fail whatever LocalStack is waiting on instead of letting it hang."""
        code = self._process.wait()
        if self._stopping.is_set():
            return
        LOG.warning(
            "Lambda environment %s (%s) exited with %s", self.id, self.function_version.qualified_arn, code
        )
        error = json.dumps(
            {
                "errorType": "Runtime.ExitError",
                "errorMessage": f"Execution environment exited with code {code}",
            }
        ).encode()
        endpoint = self.executor_endpoint
        if endpoint.startup_future and not endpoint.startup_future.done():
            endpoint.startup_future.set_exception(StatusErrorException("Environment startup failed", error))
        if endpoint.invocation_future and not endpoint.invocation_future.done():
            endpoint.invocation_future.set_result(InvocationResult("", error, is_error=True, logs=""))

    def stop(self) -> None:
        self._stopping.set()
        proc = self._process
        if proc is not None and proc.poll() is None:
            # closing stdin asks the init to kill its runtime and exit; SIGKILL only if it hangs
            try:
                proc.stdin.close()
                proc.wait(timeout=5)
            except (subprocess.TimeoutExpired, OSError):
                try:
                    os.killpg(proc.pid, 9)
                except ProcessLookupError:
                    pass
                proc.wait()
        try:
            self.executor_endpoint.shutdown()
        except Exception as exc:  # noqa: BLE001 - shutting down twice is harmless
            LOG.debug("Error while stopping executor endpoint %s: %s", self.id, exc)

    # -- addresses -----------------------------------------------------------------------------
    def get_address(self) -> str:
        return "127.0.0.1"

    def get_endpoint_from_executor(self) -> str:
        # functions reach LocalStack on loopback (also what AWS_ENDPOINT_URL is built from)
        host = config.GATEWAY_LISTEN[0].host
        return "127.0.0.1" if host in ("", "0.0.0.0") else host  # noqa: S104 - comparison only

    def get_runtime_endpoint(self) -> str:
        port = config.GATEWAY_LISTEN[0].port
        return (
            f"http://{self.get_endpoint_from_executor()}:{port}{self.executor_endpoint.get_endpoint_prefix()}"
        )

    # -- invocations ---------------------------------------------------------------------------
    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        return self.executor_endpoint.invoke(payload)

    def get_logs(self) -> str:
        return "".join(self._log_tail)

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        if function_version.config.package_type != PackageType.Zip:
            raise LambdaRuntimeException("Only zip-packaged functions run as local processes")
        interpreter_for(function_version.config.runtime)
        if function_version.config.code:
            function_version.config.code.prepare_for_execution()
        for layer in function_version.config.layers or []:
            if layer.code:
                layer.code.prepare_for_execution()

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        # the unzipped code stays cached by LocalStack (under its TMPDIR) like with Docker
        pass

    @classmethod
    def validate_environment(cls) -> bool:
        if not runtime_interpreters():
            LOG.warning("%s is not set: no Lambda runtime can start", RUNTIMES_ENV)
            return False
        return True
