"""A stock Debian: the Makefile's Debian step, run with stand-ins for apt-get, sudo and id.

On a fresh Debian 13 nothing the stack needs is there, and Debian's python3.13 makes no venv without
python3.13-venv: the step must install both before any venv is made, through sudo only when not
root, and stop with the packages' names when it can do neither.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAKE = shutil.which("make")
pytestmark = pytest.mark.skipif(MAKE is None, reason="needs make")

EVERYTHING = "python3.13 python3.13-venv redis-server ffmpeg ffmpeg nodejs npm chromium espeak-ng"


def _machine(tmp_path: Path, *, uid: int, sudo: bool, python_has_venv: bool) -> tuple[Path, dict[str, str]]:
    """A PATH with only the basics and stand-ins that log their calls."""
    bin_ = tmp_path / "bin"
    bin_.mkdir()
    log = tmp_path / "calls"
    for tool in ("bash", "mkdir", "touch", "env", "cat"):
        (bin_ / tool).symlink_to(shutil.which(tool))
    stubs = {
        "id": f'echo {uid}\necho "id $*" >> {log}',
        "apt-get": f'echo "apt-get $*" >> {log}',
        "python3.13": f"exit {0 if python_has_venv else 1}",
    }
    if sudo:
        stubs["sudo"] = f'echo "sudo $1" >> {log}\nexec "$@"'
    for name, body in stubs.items():
        (bin_ / name).write_text(f"#!{shutil.which('bash')}\n{body}\n")
        (bin_ / name).chmod(0o755)
    return log, {"PATH": str(bin_), "HOME": str(tmp_path)}


def _apt_step(tmp_path: Path, **machine: object) -> tuple[subprocess.CompletedProcess, list[str]]:
    log, env = _machine(tmp_path, **machine)  # type: ignore[arg-type]
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(ROOT / "Makefile", work / "Makefile")
    python = tmp_path / "bin" / "python3.13"
    done = subprocess.run(
        [MAKE, ".local/.apt-installed", f"PY313={python}"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    calls = log.read_text().splitlines() if log.exists() else []
    calls = [line for line in calls if not line.startswith("id")]
    return done, calls


def test_as_root_it_installs_python_venv_and_the_rest_without_sudo(tmp_path: Path):
    done, calls = _apt_step(tmp_path, uid=0, sudo=False, python_has_venv=False)
    assert done.returncode == 0, done.stderr
    assert calls == ["apt-get update -qq", f"apt-get install -y -qq {EVERYTHING}"]
    assert (tmp_path / "work" / ".local" / ".apt-installed").exists()


def test_as_a_user_it_goes_through_sudo(tmp_path: Path):
    done, calls = _apt_step(tmp_path, uid=1000, sudo=True, python_has_venv=False)
    assert done.returncode == 0, done.stderr
    assert calls == [
        "sudo apt-get",
        "apt-get update -qq",
        "sudo env",
        f"apt-get install -y -qq {EVERYTHING}",
    ]


def test_a_user_without_sudo_is_told_what_to_install(tmp_path: Path):
    done, calls = _apt_step(tmp_path, uid=1000, sudo=False, python_has_venv=False)
    assert done.returncode != 0
    assert calls == []
    assert f"apt-get install {EVERYTHING}" in done.stderr


def test_a_python_that_makes_venvs_is_kept(tmp_path: Path):
    done, calls = _apt_step(tmp_path, uid=0, sudo=False, python_has_venv=True)
    assert done.returncode == 0, done.stderr
    assert calls[-1] == f"apt-get install -y -qq {EVERYTHING.removeprefix('python3.13 python3.13-venv ')}"


def test_the_debian_step_runs_before_any_venv_is_made():
    planned = subprocess.run(
        [MAKE, "-n", "-B", "deps", "PY313=/usr/bin/python3.13"],
        cwd=ROOT,
        env={**os.environ, "MAKEFLAGS": ""},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.splitlines()
    apt = next(i for i, line in enumerate(planned) if "apt-get install" in line)
    venvs = [i for i, line in enumerate(planned) if " -m venv " in line]
    assert len(venvs) == 4 and apt < min(venvs), planned
