"""Paths, names and state of one stack: `.local/<name>/` with its data, logs, pid files, ports and
the `env` file with every URL a client or test needs."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

# The checkout this package is in: a stack always runs from a checkout (scripts/stack.py, or the
# dev venv's editable install).
REPO = Path(__file__).resolve().parents[3]
REGION = "us-east-1"
STACK_NAME = "verriflo"
DEFAULT_LOCALSTACK_PORT = 4566
LAMBDA_RUNTIME = "python3.13"

VENV = REPO / ".venv"
VENV_LOCALSTACK = REPO / ".venv-localstack"
VENV_SAM = REPO / ".venv-sam"
VENV_LAMBDA = REPO / f".venv-lambda-{LAMBDA_RUNTIME}"


class StackError(RuntimeError):
    """A step of bringing a stack up or down failed; the message says which and why."""


def log(message: str) -> None:
    print(f"[stack] {message}", file=sys.stderr, flush=True)


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
