"""The classroom page (live/dist), published to a stack's page bucket."""

from __future__ import annotations

import subprocess

from verriflo_tools.stack.localstack import aws_env
from verriflo_tools.stack.standin import livekit_url
from verriflo_tools.stack.state import REPO, STACK_NAME, VENV, Stack, StackError, log


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
