"""The static pages of the page bucket, published to a stack: the classroom page (live/dist) and
the Console (console/dist)."""

from __future__ import annotations

import subprocess

from verriflo_tools.stack.localstack import aws_env
from verriflo_tools.stack.standin import livekit_url
from verriflo_tools.stack.state import REPO, STACK_NAME, VENV, Stack, StackError, log


def _publish(stack: Stack, ports: dict[str, int], folder: str, what: str, args: list[str]) -> None:
    """Run `<folder>/publish.py --stack <stack> <args>` against the stack's LocalStack."""
    proc = subprocess.run(  # noqa: S603
        [str(VENV / "bin" / "python"), str(REPO / folder / "publish.py"), "--stack", STACK_NAME, *args],
        env=aws_env(stack, ports), cwd=str(REPO), capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise StackError(f"publishing the {what} failed: {proc.stderr.strip()[-1000:]}")


def publish_classroom_page(stack: Stack, ports: dict[str, int], api_url: str | None = None) -> None:
    """Upload the classroom page (live/dist, built by `make deps`) to the stack's page bucket."""
    if not (REPO / "live" / "publish.py").exists():
        return
    if not (REPO / "live" / "dist" / "iframe" / "live").exists():
        log("live/dist not built (make live-page): classroom page not published")
        return
    ws_url = livekit_url(ports).replace("http://", "ws://", 1)
    _publish(stack, ports, "live", "classroom page",
             ["--livekit-url", ws_url, *(["--api-url", api_url] if api_url else [])])  # fmt: skip


def publish_console(stack: Stack, ports: dict[str, int], api_url: str) -> bool:
    """Upload the Console (console/dist, built by `make deps`) to the page bucket under `console/`;
    False when it is not built."""
    if not (REPO / "console" / "dist" / "console" / "index.html").exists():
        log("console/dist not built (make console-page): Console not published")
        return False
    _publish(stack, ports, "console", "Console", ["--api-url", api_url])
    return True
