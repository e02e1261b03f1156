"""Run the whole Verriflo stack on this machine, offline: MongoDB-wire server, Redis, LocalStack.

One "stack" = one state folder `.local/<name>/` holding its data, logs, pid files and an `env`
file with every URL a client or test needs. Stacks never share ports or folders, so `make up`
(stack `dev`) and the e2e tests (stack `e2e`) run side by side.

    python scripts/stack.py up [--stack dev] [--no-deploy]   start what is not running, deploy, seed
    python scripts/stack.py down [--stack dev]                stop by recorded pids
    python scripts/stack.py localstack-start|localstack-stop [--stack dev]
    python scripts/stack.py servers-start|servers-stop [--stack dev]
    python scripts/stack.py env [--stack dev]                 print the env file as JSON

Stdlib only, so any python3 can run it before a venv exists. Waiting is bounded polling.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import glob
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
REGION = "us-east-1"
STACK_NAME = "verriflo"
DEFAULT_LOCALSTACK_PORT = 4566
LAMBDA_RUNTIME = "python3.13"

VENV = REPO / ".venv"
VENV_LOCALSTACK = REPO / ".venv-localstack"
VENV_SAM = REPO / ".venv-sam"
VENV_LAMBDA = REPO / f".venv-lambda-{LAMBDA_RUNTIME}"

_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class StackError(RuntimeError):
    pass


def log(message: str) -> None:
    print(f"[stack] {message}", file=sys.stderr, flush=True)


# ---- paths and state ------------------------------------------------------------------------
class Stack:
    def __init__(self, name: str):
        self.name = name
        self.root = REPO / ".local" / name
        self.pids = self.root / "pids"
        self.logs = self.root / "logs"
        self.env_file = self.root / "env"
        self.ports_file = self.root / "ports.json"

    def ensure_dirs(self) -> None:
        for path in (self.root, self.pids, self.logs):
            path.mkdir(parents=True, exist_ok=True)

    def ports(self) -> dict[str, int]:
        if self.ports_file.exists():
            return json.loads(self.ports_file.read_text())
        return {}

    def save_ports(self, ports: dict[str, int]) -> None:
        self.ports_file.write_text(json.dumps(ports, indent=2))

    def read_env(self) -> dict[str, str]:
        env = {}
        if self.env_file.exists():
            for line in self.env_file.read_text().splitlines():
                if "=" in line and not line.startswith("#"):
                    key, _, value = line.partition("=")
                    env[key] = shlex.split(value)[0] if value else ""
        return env

    def write_env(self, values: dict[str, str]) -> None:
        merged = self.read_env() | values
        lines = ["# written by scripts/stack.py; shell-quoted: `set -a; . .local/<stack>/env; set +a`"]
        lines += [f"{k}={shlex.quote(v)}" for k, v in merged.items()]
        self.env_file.write_text("\n".join(lines) + "\n")
        self.env_file.chmod(0o600)  # holds the demo org's key


# ---- processes ------------------------------------------------------------------------------
def _pid_file(stack: Stack, name: str) -> Path:
    return stack.pids / f"{name}.pid"


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def running_pid(stack: Stack, name: str, marker: str) -> int | None:
    """The recorded pid if that process still runs and is still ours (pids get reused)."""
    path = _pid_file(stack, name)
    if not path.exists():
        return None
    try:
        pid = int(path.read_text().strip())
    except ValueError:
        return None
    cmd = _cmdline(pid)
    if cmd and marker in cmd:
        return pid
    return None


def spawn(stack: Stack, name: str, argv: list[str], env: dict[str, str], cwd: Path | None = None) -> int:
    logfile = open(stack.logs / f"{name}.log", "ab")  # noqa: SIM115 - handed to the child
    proc = subprocess.Popen(  # noqa: S603 - fixed commands built here
        argv,
        stdin=subprocess.DEVNULL,
        stdout=logfile,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=str(cwd or REPO),
        start_new_session=True,  # outlives this script; stopped by pid
    )
    logfile.close()
    _pid_file(stack, name).write_text(str(proc.pid))
    return proc.pid


def stop_pid(stack: Stack, name: str, marker: str, grace_s: float = 10.0) -> None:
    pid = running_pid(stack, name, marker)
    if pid is None:
        _pid_file(stack, name).unlink(missing_ok=True)
        return
    log(f"stopping {name} (pid {pid})")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not _wait_exit(pid, grace_s):
        # LocalStack sometimes ignores SIGTERM (ENVIRONMENT.md): same pid, harder signal
        log(f"{name} ignored SIGTERM for {grace_s:.0f}s; sending SIGKILL")
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait_exit(pid, 5.0)
    _pid_file(stack, name).unlink(missing_ok=True)


def _wait_exit(pid: int, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            # reap it if it is our child; otherwise just probe
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return True
        except ChildProcessError:
            pass
        if not Path(f"/proc/{pid}").exists() or "zombie" in _proc_state(pid):
            return True
        time.sleep(0.1)
    return False


def _proc_state(pid: int) -> str:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("State:"):
                return line.lower()
    except OSError:
        return "gone"
    return ""


def poll(what: str, check, timeout_s: float, interval_s: float = 0.1, pid: int | None = None):
    """Bounded polling: call `check` until it returns a truthy value or time runs out."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        if pid is not None and not Path(f"/proc/{pid}").exists():
            raise StackError(f"{what}: process {pid} exited (see logs)")
        if time.monotonic() > deadline:
            raise StackError(f"{what}: not ready after {timeout_s:.0f}s")
        time.sleep(interval_s)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        # as the servers themselves do, so a port in TIME_WAIT after a restart counts as free
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def tcp_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def base_env() -> dict[str, str]:
    """A clean environment for the servers: no AWS settings or venvs leak in from the caller."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "USER", "TERM")
    return {k: os.environ[k] for k in keep if k in os.environ}


# ---- interpreters and tools -----------------------------------------------------------------
def python313() -> str:
    """python3.13 for venvs and `sam build`: on PATH, else from pyenv. Each candidate is run once:
    a pyenv shim named python3.13 can exist on PATH and still refuse to run."""
    candidates = [shutil.which("python3.13") or ""]
    roots = []
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        roots.append(
            subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=True).stdout.strip()
        )
    roots += [os.environ.get("PYENV_ROOT", ""), str(Path.home() / ".pyenv")]
    for root in filter(None, roots):
        candidates += sorted(glob.glob(f"{root}/versions/3.13*/bin/python3.13"), reverse=True)
    for candidate in filter(None, candidates):
        with contextlib.suppress(OSError):
            if subprocess.run([candidate, "-c", ""], capture_output=True, check=False).returncode == 0:  # noqa: S603
                return candidate
    raise StackError("python3.13 not found (PATH or pyenv)")


def require(path: Path, hint: str) -> Path:
    if not path.exists():
        raise StackError(f"{path.relative_to(REPO)} missing: {hint}")
    return path


def redis_server() -> str:
    found = shutil.which("redis-server") or (
        "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
    )
    if not found:
        raise StackError("redis-server not installed: run `make deps` (apt-get install -y redis-server)")
    return found


# ---- servers --------------------------------------------------------------------------------
def start_mongo(stack: Stack, ports: dict[str, int]) -> None:
    marker = "secantusd"
    if running_pid(stack, "mongodb", marker):
        return
    exe = require(VENV / "bin" / "secantusd-py", "run `make venv`")
    port = _choose(ports, "mongodb", None)
    data = stack.root / "mongodb"
    data.mkdir(parents=True, exist_ok=True)
    argv = [
        str(exe),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--storage-path",
        str(data),
        "--sync-on-commit",
    ]
    pid = spawn(stack, "mongodb", argv, base_env())
    poll("MongoDB-wire server", lambda: tcp_open(port), 30, pid=pid)
    log(f"mongodb on 127.0.0.1:{port} (pid {pid})")


def start_redis(stack: Stack, ports: dict[str, int]) -> None:
    marker = "redis-server"
    if running_pid(stack, "redis", marker):
        return
    port = _choose(ports, "redis", None)
    argv = [
        redis_server(),
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
        "--dir",
        str(stack.root),
    ]
    pid = spawn(stack, "redis", argv, base_env())
    poll("redis", lambda: tcp_open(port), 15, pid=pid)
    log(f"redis on 127.0.0.1:{port} (pid {pid})")


def _choose(ports: dict[str, int], name: str, preferred: int | None) -> int:
    """Keep a stack's recorded port while it is free, else the preferred one, else any free one."""
    for candidate in (ports.get(name), preferred):
        if candidate and port_free(candidate):
            ports[name] = candidate
            return candidate
    ports[name] = free_port()
    return ports[name]


def localstack_env(stack: Stack, port: int) -> dict[str, str]:
    ls_root = stack.root / "localstack"
    tmp = ls_root / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    env = base_env()
    env.update(
        {
            # settings checked in ENVIRONMENT.md for LocalStack on the host, loopback only
            "OVERRIDE_IN_DOCKER": "0",
            "GATEWAY_LISTEN": f"127.0.0.1:{port}",
            "GATEWAY_SERVER": "hypercorn",
            "DNS_ADDRESS": "0",
            "DISABLE_EVENTS": "1",
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "SQS_ENDPOINT_STRATEGY": "path",
            "LOCALSTACK_HOST": f"127.0.0.1:{port}",
            "FILESYSTEM_ROOT": str(ls_root / "fs"),
            # LocalStack unzips Lambda code and layers under TMPDIR: keep them in the stack's folder
            "TMPDIR": str(tmp),
            "LAMBDA_RUNTIME_EXECUTOR": "verriflo-process",
            # a function's init (imports, models) may take long on this shared 2-core machine under
            # test load; LocalStack's default of 20 s then fails the environment's start
            "LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT": "60",
            "VERRIFLO_LAMBDA_RUNTIMES": json.dumps({LAMBDA_RUNTIME: str(VENV_LAMBDA / "bin" / "python")}),
            # this checkout's plugins (executor, API Gateway extension), ahead of the venv's editable
            # install, which points at whichever checkout ran `make deps`
            "PYTHONPATH": str(REPO / "localstack"),
        }
    )
    # opt-in heap tracing of LocalStack (localstack/verriflo_localstack/memtrace.py)
    env.update({k: v for k, v in os.environ.items() if k.startswith("VERRIFLO_LOCALSTACK_TRACEMALLOC")})
    return env


def localstack_health(port: int) -> dict | None:
    try:
        with _NO_PROXY.open(f"http://127.0.0.1:{port}/_localstack/health", timeout=2) as resp:
            return json.loads(resp.read())
    except (OSError, ValueError, urllib.error.URLError):
        return None


def start_localstack(stack: Stack, ports: dict[str, int]) -> None:
    marker = "localstack.runtime.main"
    if running_pid(stack, "localstack", marker) and localstack_health(ports.get("localstack", 0)):
        return
    python = require(VENV_LOCALSTACK / "bin" / "python", "run `make localstack-venv`")
    require(VENV_LAMBDA / "bin" / "python", "run `make lambda-venv`")
    preferred = DEFAULT_LOCALSTACK_PORT if stack.name == "dev" else None
    port = _choose(ports, "localstack", preferred)
    env = localstack_env(stack, port)
    pid = spawn(stack, "localstack", [str(python), "-m", "localstack.runtime.main"], env)
    poll("LocalStack", lambda: localstack_health(port), 60, interval_s=0.2, pid=pid)
    log(f"localstack on 127.0.0.1:{port} (pid {pid})")


# ---- deploy and seed ------------------------------------------------------------------------
def aws_env(stack: Stack, ports: dict[str, int]) -> dict[str, str]:
    env = base_env()
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",  # LocalStack's fixed dummy credentials
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{ports['localstack']}",
        }
    )
    return env


def deploy(stack: Stack, ports: dict[str, int], build_key: str | None = None) -> dict[str, str]:
    """samlocal build + deploy of template.yaml; returns the stack outputs.

    Stacks with the same `build_key` share one build folder (and its cache), one build at a time
    (a file lock); each stack deploys from its own snapshot of it (.local/<stack>/hot)."""
    samlocal = require(VENV_SAM / "bin" / "samlocal", "run `make sam-venv`")
    env = sam_env(aws_env(stack, ports))
    build_root = REPO / ".aws-sam" / (build_key or stack.name)
    build_root.mkdir(parents=True, exist_ok=True)
    lock = open(build_root / ".lock", "w")  # noqa: SIM115 - held until the snapshot exists
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        build_dir = sam_build(stack, build_root, env)
        template = _local_template(build_dir, stack, env)
    finally:
        lock.close()  # releases the lock
    bucket = "verriflo-sam-artifacts"
    _s3_bucket(env, bucket)
    wanted = {
        "Stage": "local",
        # Lambda processes reach the stack's own servers on loopback
        "MongoDbUri": mongodb_uri(ports),
        "RedisUrl": redis_url(ports),
        # this stack's LocalStack port (the template's default assumes 4566)
        "LocalS3Url": f"http://127.0.0.1:{ports['localstack']}",
        # the LiveKit stand-in of this stack
        "LiveKitUrl": livekit_url(ports),
    }
    declared = template_parameters()
    overrides = {k: v for k, v in wanted.items() if k in declared}
    started = time.monotonic()
    existed = _stack_status(env) is not None
    try:
        _sam_deploy(samlocal, template, bucket, overrides, env, stack)
    except StackError as exc:
        status = _stack_status(env)
        if not existed or status is None:
            raise  # a first deploy failed: the template itself is at fault
        # LocalStack's CloudFormation cannot apply some updates in place (it replaces the API
        # stage when the routes change and the replacement collides with the old stage; large
        # change sets can fail to describe), and a failed update leaves resources behind. Its
        # state is disposable (the data lives in MongoDB), so: fresh LocalStack, fresh deploy.
        log(f"in-place update failed (stack {status}); restarting LocalStack and deploying afresh")
        log(str(exc).splitlines()[0])
        stop_pid(stack, "localstack", "localstack.runtime.main")
        shutil.rmtree(stack.root / "localstack", ignore_errors=True)
        start_localstack(stack, ports)
        stack.save_ports(ports)
        _s3_bucket(env, bucket)
        _sam_deploy(samlocal, template, bucket, overrides, env, stack)
    log(f"sam deploy: {time.monotonic() - started:.1f}s")
    return stack_outputs(env)


def sam_env(env: dict[str, str]) -> dict[str, str]:
    """`env` with what SAM CLI needs here."""
    return env | {
        # sam build finds the function runtime's interpreter on PATH
        "PATH": f"{Path(python313()).parent}:{VENV_SAM / 'bin'}:{env.get('PATH', '')}",
        "SAM_CLI_TELEMETRY": "0",
        "SAM_CLI_POLL_DELAY": "0.5",  # CloudFormation on LocalStack takes seconds, not minutes
        "DISABLE_DEPRECATION_NOTICE": "1",
    }


def sam_build(stack: Stack, build_root: Path, env: dict[str, str]) -> Path:
    """`samlocal build` of template.yaml into build_root/build (cached), `env` from sam_env();
    returns that folder: each function and layer as it is zipped for Lambda (functions/Makefile,
    layers/*/Makefile)."""
    samlocal = require(VENV_SAM / "bin" / "samlocal", "run `make sam-venv`")
    build_dir = build_root / "build"
    cache_dir = build_root / "cache"
    started = time.monotonic()
    _run(
        [
            str(samlocal),
            "build",
            "--cached",
            "--parallel",
            "--build-dir",
            str(build_dir),
            "--cache-dir",
            str(cache_dir),
            "--config-file",
            str(REPO / "samconfig.toml"),
            "--config-env",
            "localstack",
            "--template-file",
            str(REPO / "template.yaml"),
            "--base-dir",
            str(REPO),
        ],
        env,
        stack,
        "sam-build",
        # SAM keeps a dependency cache in ./.aws-sam/deps: one per stack, so parallel builds (make
        # up while make test runs) do not delete each other's folders
        cwd=build_dir.parent,
    )
    log(f"sam build: {time.monotonic() - started:.1f}s")
    return build_dir


def _local_template(build_dir: Path, stack: Stack, env: dict[str, str]) -> Path:
    """The built template, checked for dependency cycles (AWS refuses them; LocalStack would
    recurse for minutes), with code and layers served from local folders instead of uploaded
    (see scripts/template_check.py)."""
    out = stack.root / "template.local.yaml"
    proc = subprocess.run(  # noqa: S603
        [
            str(VENV_SAM / "bin" / "python"),
            str(REPO / "scripts" / "template_check.py"),
            str(build_dir / "template.yaml"),
            "Stage=local",
            "--local-out",
            str(out),
            "--snapshots",
            str(stack.root / "hot"),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise StackError(
            "template.yaml cannot be deployed (CloudFormation rejects circular dependencies):\n"
            + (proc.stdout or proc.stderr).strip()
        )
    return out


def _stack_status(env: dict[str, str]) -> str | None:
    try:
        out = _aws_call(env, "cloudformation", "describe_stacks", {"StackName": STACK_NAME})
    except StackError:
        return None
    return out["Stacks"][0].get("StackStatus")


def _sam_deploy(
    samlocal: Path, template: Path, bucket: str, overrides: dict[str, str], env: dict[str, str], stack: Stack
) -> None:
    _run(
        [
            str(samlocal),
            "deploy",
            "--config-file",
            str(REPO / "samconfig.toml"),
            "--config-env",
            "localstack",
            "--template-file",
            str(template),
            "--s3-bucket",
            bucket,
            "--no-confirm-changeset",
            "--no-fail-on-empty-changeset",
            "--parameter-overrides",
            *[f"{k}={v}" for k, v in overrides.items()],
        ],
        env,
        stack,
        "sam-deploy",
    )


def template_parameters() -> set[str]:
    """Names under `Parameters:` in template.yaml (only those may be overridden)."""
    names, inside = set(), False
    for line in (REPO / "template.yaml").read_text().splitlines():
        if re.match(r"^\S", line):
            inside = line.startswith("Parameters:")
            continue
        if inside and (m := re.match(r"^  ([A-Za-z0-9]+):", line)):
            names.add(m.group(1))
    return names


def _run(argv: list[str], env: dict[str, str], stack: Stack, name: str, cwd: Path = REPO) -> None:
    cwd.mkdir(parents=True, exist_ok=True)
    with open(stack.logs / f"{name}.log", "wb") as out:
        proc = subprocess.run(argv, env=env, cwd=str(cwd), stdout=out, stderr=subprocess.STDOUT, check=False)  # noqa: S603
    if proc.returncode != 0:
        tail = (stack.logs / f"{name}.log").read_text(errors="replace").splitlines()[-40:]
        raise StackError(f"{name} failed (exit {proc.returncode}); last lines:\n" + "\n".join(tail))


def _aws_call(env: dict[str, str], service: str, action: str, params: dict) -> dict:
    """A boto3 call run with the SAM venv's Python (this script has no boto3 of its own)."""
    code = (
        "import boto3, json, sys\n"
        "service, action, params = json.loads(sys.argv[1])\n"
        "client = boto3.client(service)\n"
        "out = getattr(client, action)(**params)\n"
        "out.pop('ResponseMetadata', None)\n"
        "print(json.dumps(out, default=str))\n"
    )
    proc = subprocess.run(  # noqa: S603
        [str(VENV_SAM / "bin" / "python"), "-c", code, json.dumps([service, action, params])],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise StackError(f"{service}.{action} failed: {proc.stderr.strip()[-500:]}")
    return json.loads(proc.stdout)


def _s3_bucket(env: dict[str, str], bucket: str) -> None:
    # samlocal uploads code artifacts to S3 before CloudFormation runs; idempotent
    try:
        _aws_call(env, "s3", "head_bucket", {"Bucket": bucket})
    except StackError:
        _aws_call(env, "s3", "create_bucket", {"Bucket": bucket})


def stack_outputs(env: dict[str, str]) -> dict[str, str]:
    out = _aws_call(env, "cloudformation", "describe_stacks", {"StackName": STACK_NAME})
    outputs = out["Stacks"][0].get("Outputs", [])
    return {o["OutputKey"]: o["OutputValue"] for o in outputs}


def offline_api_url(outputs: dict[str, str], ports: dict[str, int]) -> str:
    """The API's base URL as LocalStack serves it on loopback: /_aws/execute-api/<id>/<stage>."""
    api_id = outputs.get("ApiId")
    stage = "v1"
    if url := outputs.get("ApiUrl"):
        # https://<id>.execute-api.<region>.amazonaws.com/<stage>[/...]
        host, _, rest = url.split("://", 1)[-1].partition("/")
        api_id = api_id or host.split(".", 1)[0]
        stage = rest.split("/", 1)[0] or stage
    if not api_id:
        raise StackError(f"stack outputs have no ApiId/ApiUrl: {sorted(outputs)}")
    return f"http://127.0.0.1:{ports['localstack']}/_aws/execute-api/{api_id}/{stage}"


def mongodb_uri(ports: dict[str, int]) -> str:
    # retryWrites=false: see ENVIRONMENT.md (the local server slows down with retryable writes)
    return f"mongodb://127.0.0.1:{ports['mongodb']}/verriflo?retryWrites=false&directConnection=true"


def livekit_url(ports: dict[str, int]) -> str:
    return f"http://127.0.0.1:{ports['livekit']}"


def start_livekit(stack: Stack, ports: dict[str, int], outputs: dict[str, str], api_url: str) -> None:
    """The LiveKit stand-in (standins/livekit), with the stack's LiveKit secret and webhooks to the
    deployed API. Restarted on every deploy: a fresh LocalStack generates a fresh secret."""
    stop_pid(stack, "livekit", "standins.livekit", grace_s=5)
    port = ports["livekit"]
    if not port_free(port):
        ports["livekit"] = port = free_port()
    env = aws_env(stack, ports)
    argv = [
        str(VENV / "bin" / "python"), "-m", "standins.livekit", "--port", str(port),
        "--secret-name", outputs.get("LiveKitSecretName", f"{STACK_NAME}/livekit"),
        "--webhook-url", f"{api_url}/v1/livekit/webhook",
    ]  # fmt: skip
    pid = spawn(stack, "livekit", argv, env)
    poll("LiveKit stand-in", lambda: tcp_open(port), 30, pid=pid)
    log(f"livekit stand-in on 127.0.0.1:{port} (pid {pid})")


def publish_classroom_page(stack: Stack, ports: dict[str, int], api_url: str | None = None) -> None:
    """Upload the classroom page (live/dist, built by `make deps`) to the stack's page bucket."""
    if not (REPO / "live" / "publish.py").exists():
        return
    if not (REPO / "live" / "dist" / "iframe" / "live").exists():
        log("live/dist not built (make live-page): classroom page not published")
        return
    ws_url = livekit_url(ports).replace("http://", "ws://", 1)
    proc = subprocess.run(  # noqa: S603
        [str(VENV / "bin" / "python"), str(REPO / "live" / "publish.py"), "--stack", STACK_NAME,
         "--livekit-url", ws_url, *(["--api-url", api_url] if api_url else [])],
        env=aws_env(stack, ports), cwd=str(REPO), capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise StackError(f"publishing the classroom page failed: {proc.stderr.strip()[-1000:]}")


def redis_url(ports: dict[str, int]) -> str:
    return f"redis://127.0.0.1:{ports['redis']}/0"


def app_env(stack: Stack, ports: dict[str, int]) -> dict[str, str]:
    """What the operators' CLI and tests need to reach this stack's stores."""
    env = aws_env(stack, ports)
    env.update({"MONGODB_URI": mongodb_uri(ports), "REDIS_URL": redis_url(ports), "STAGE": "local"})
    return env


def seed_demo(stack: Stack, ports: dict[str, int]) -> dict:
    cli = require(VENV / "bin" / "verriflo", "run `make venv`")
    # indexes first (idempotent): the unique ones are part of the data model
    init = subprocess.run(  # noqa: S603
        [str(cli), "--json", "db-init"],
        env=app_env(stack, ports),
        cwd=str(REPO),
        capture_output=True,
        text=True,
        check=False,
    )
    if init.returncode != 0:
        raise StackError(f"verriflo db-init failed: {init.stderr.strip()[-1000:]}")
    proc = subprocess.run(  # noqa: S603
        [str(cli), "--json", "seed-demo"],
        env=app_env(stack, ports),
        cwd=str(REPO),
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise StackError(f"verriflo seed-demo failed: {proc.stderr.strip()[-1000:]}")
    # the last JSON line is the result (the CLI may log before it)
    for line in reversed(proc.stdout.strip().splitlines()):
        with contextlib.suppress(ValueError):
            return json.loads(line)
    raise StackError("verriflo seed-demo printed no JSON")


def _demo_key_works(api_url: str, key: str) -> bool:
    """Re-running `up` keeps the demo org it seeded before, if its key still authenticates."""
    if not key:
        return False
    request = urllib.request.Request(f"{api_url}/v1/auth/whoami", headers={"VF-ORG-ID": key})  # noqa: S310
    try:
        with _NO_PROXY.open(request, timeout=60) as resp:
            return resp.status == 200
    except (OSError, urllib.error.URLError):
        return False


# ---- commands -------------------------------------------------------------------------------
def cmd_servers_start(stack: Stack) -> dict[str, int]:
    stack.ensure_dirs()
    ports = stack.ports()
    if not running_pid(stack, "livekit", "standins.livekit"):
        # chosen now: the functions are deployed with this URL; the stand-in starts after deploy
        _choose(ports, "livekit", 7880 if stack.name == "dev" else None)
    start_mongo(stack, ports)
    stack.save_ports(ports)
    start_redis(stack, ports)
    stack.save_ports(ports)
    return ports


def cmd_localstack_start(stack: Stack) -> dict[str, int]:
    stack.ensure_dirs()
    ports = stack.ports()
    start_localstack(stack, ports)
    stack.save_ports(ports)
    return ports


def cmd_up(stack: Stack, deploy_stack: bool, seed: bool, build_key: str | None = None) -> dict[str, str]:
    started = time.monotonic()
    cmd_servers_start(stack)
    ports = cmd_localstack_start(stack)
    values = {
        "STACK": stack.name,
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{ports['localstack']}",
        "AWS_DEFAULT_REGION": REGION,
        "MONGODB_URI": mongodb_uri(ports),
        "REDIS_URL": redis_url(ports),
    }
    stack.write_env(values)
    if deploy_stack:
        outputs = deploy(stack, ports, build_key)
        values["API_URL"] = offline_api_url(outputs, ports)
        values.update({f"STACK_OUTPUT_{k}": v for k, v in outputs.items()})
        if "LiveKitUrl" in template_parameters():
            start_livekit(stack, ports, outputs, values["API_URL"])
            stack.save_ports(ports)
            values["LIVEKIT_URL"] = livekit_url(ports)
            publish_classroom_page(stack, ports, values["API_URL"])  # the tutor panel calls the API
        stack.write_env(values)
        if seed and not _demo_key_works(values["API_URL"], stack.read_env().get("DEMO_API_KEY", "")):
            demo = seed_demo(stack, ports)
            values["DEMO_ORG_ID"] = str(demo.get("orgId", ""))
            values["DEMO_API_KEY"] = str(demo.get("apiKey", ""))
            values["DEMO_OWNER_EMAIL"] = str(demo.get("ownerEmail", ""))
            values["DEMO_OWNER_PASSWORD"] = str(demo.get("ownerPassword", ""))
            stack.write_env(values)
    log(f"stack {stack.name} up in {time.monotonic() - started:.1f}s")
    return stack.read_env()


def cmd_down(stack: Stack) -> None:
    # LocalStack first: its Lambda processes may hold connections to the stores
    stop_pid(stack, "livekit", "standins.livekit", grace_s=5)
    stop_pid(stack, "localstack", "localstack.runtime.main")
    stop_pid(stack, "redis", "redis-server")
    stop_pid(stack, "mongodb", "secantusd")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "command",
        choices=[
            "up",
            "down",
            "servers-start",
            "servers-stop",
            "localstack-start",
            "localstack-stop",
            "env",
            "python313",
        ],
    )
    parser.add_argument("--stack", default=os.environ.get("VERRIFLO_STACK", "dev"))
    parser.add_argument("--no-deploy", action="store_true")
    parser.add_argument("--build-key", help="share the SAM build folder with other stacks of this key")
    parser.add_argument("--no-seed", action="store_true")
    parser.add_argument("--json", action="store_true", help="print the stack's env as JSON on stdout")
    args = parser.parse_args(argv)
    stack = Stack(args.stack)
    try:
        if args.command == "python313":
            print(python313())
            return 0
        if args.command == "up":
            env = cmd_up(stack, not args.no_deploy, not args.no_seed, args.build_key)
            if args.json:
                print(json.dumps(env))
            else:
                _print_summary(env)
        elif args.command == "down":
            cmd_down(stack)
        elif args.command == "servers-start":
            cmd_servers_start(stack)
        elif args.command == "servers-stop":
            stop_pid(stack, "redis", "redis-server")
            stop_pid(stack, "mongodb", "secantusd")
        elif args.command == "localstack-start":
            cmd_localstack_start(stack)
        elif args.command == "localstack-stop":
            stop_pid(stack, "localstack", "localstack.runtime.main")
        elif args.command == "env":
            print(json.dumps(stack.read_env()))
    except StackError as exc:
        log(f"error: {exc}")
        return 1
    return 0


def _print_summary(env: dict[str, str]) -> None:
    api = env.get("API_URL", "(not deployed)")
    key = env.get("DEMO_API_KEY", "")
    print(f"""
Verriflo stack '{env.get("STACK")}' is up.
  API base URL : {api}
  AWS endpoint : {env.get("AWS_ENDPOINT_URL")}
  MongoDB      : {env.get("MONGODB_URI")}
  Redis        : {env.get("REDIS_URL")}
  Demo org key : {key or "(not seeded)"}
  Classroom    : {env.get("STACK_OUTPUT_LiveUiUrl", "(not deployed)")}/iframe/live?token=<join token>
  LiveKit      : stand-in at {env.get("LIVEKIT_URL", "(not started)")} (no media; README, "Live classrooms")
  Dashboard    : {env.get("DEMO_OWNER_EMAIL", "")} / {env.get("DEMO_OWNER_PASSWORD", "")}
                 (POST /v1/auth/login)
  (all of this is in .local/{env.get("STACK")}/env)

  curl -H "VF-ORG-ID: {key or "<key>"}" {api}/v1/health/ready
""")


if __name__ == "__main__":
    sys.exit(main())
