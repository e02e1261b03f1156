"""The LiveKit stand-in (standins/livekit) of a stack."""

from __future__ import annotations

from verriflo_tools.stack.localstack import aws_env
from verriflo_tools.stack.ports import free_port, port_free, tcp_open
from verriflo_tools.stack.processes import poll, spawn, stop_pid
from verriflo_tools.stack.state import STACK_NAME, VENV, Stack, log


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
