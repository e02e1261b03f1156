"""Builds that reproduce: every venv and layer installs from a hashed lock (`make lock` writes them).

- each lock pins every package to one version with its hashes, and agrees with the inputs it was
  written from (a pin changed in an input without `make lock` fails here);
- the deployed layers and the webhook dispatcher ship exactly the versions the dev venv tests;
- the installed venvs are their locks, package for package (importlib.metadata), so a venv built
  some other way, or left behind by a changed lock, fails here.
"""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from scripts import locks

ROOT = Path(__file__).resolve().parents[2]

DEV_LOCK = "requirements/dev.lock"
# venv -> its lock (Makefile)
VENV_LOCKS = {
    ".venv": DEV_LOCK,
    ".venv-localstack": "localstack/requirements.lock",
    ".venv-sam": "requirements/sam.lock",
    ".venv-lambda-python3.13": "requirements/lambda-runtime.lock",
}
# what the deployed code ships, resolved against the dev lock
SHIPPED_LOCKS = [
    "layers/common/requirements.lock",
    "layers/ai/requirements.lock",
    "layers/ai/media/speech.lock",
    "layers/ai/media/vision.lock",
    "layers/ai/media/charts.lock",
    "functions/webhook_dispatcher/requirements.lock",
]
# lock -> the requirement files it is written from
INPUTS = {
    "requirements/pip.lock": ["requirements/pip.in"],
    DEV_LOCK: ["layers/ai/requirements.txt", "layers/ai_media/requirements.txt"],
    "localstack/requirements.lock": ["localstack/requirements.txt"],
    "requirements/sam.lock": ["requirements/sam.in"],
    "requirements/lambda-runtime.lock": ["requirements/lambda-runtime.in"],
    "layers/common/requirements.lock": ["layers/common/requirements.txt"],
    "layers/ai/requirements.lock": ["layers/ai/requirements.txt"],
    "layers/ai/media/speech.lock": ["layers/ai/media/speech.txt"],
    "layers/ai/media/vision.lock": ["layers/ai/media/vision.txt"],
    "layers/ai/media/charts.lock": ["layers/ai/media/charts.txt"],
    "layers/ffmpeg/requirements.lock": ["layers/ffmpeg/requirements.txt"],
    "functions/webhook_dispatcher/requirements.lock": ["functions/webhook_dispatcher/requirements.txt"],
}
# locked without dependency trees (the layer builds install exactly these: layers/ai/Makefile)
NO_DEPS = {path for path in INPUTS if path.startswith(("layers/ai/", "layers/ffmpeg/"))}


def _entries(path: str) -> dict[str, tuple[str, list[str]]]:
    return locks.entries(ROOT / path)


def _pins(path: str) -> dict[str, str]:
    return {name: version for name, (version, _) in _entries(path).items()}


def _requirements(path: Path) -> list[Requirement]:
    """The requirements of a pip requirements file, following `-r`."""
    found: list[Requirement] = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line.startswith("-r "):
            found += _requirements((path.parent / line[3:].strip()).resolve())
        elif line:
            found.append(Requirement(line))
    return found


def _pyproject_requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["dev"]]


def _all_locks() -> list[str]:
    return sorted(INPUTS)


@pytest.mark.parametrize("lock", _all_locks())
def test_every_lock_pins_each_package_with_hashes(lock: str):
    entries = _entries(lock)
    assert entries, f"{lock} is empty"
    unhashed = sorted(name for name, (_, hashes) in entries.items() if not hashes)
    assert not unhashed, f"{lock}: no hashes for {unhashed} (run make lock)"


@pytest.mark.parametrize("lock", _all_locks())
def test_every_lock_agrees_with_its_inputs(lock: str):
    pins = _pins(lock)
    wanted = [req for source in INPUTS[lock] for req in _requirements(ROOT / source)]
    if lock == DEV_LOCK:
        wanted += _pyproject_requirements()
    stale = [
        f"{req} (locked: {pins.get(canonicalize_name(req.name))})"
        for req in wanted
        if canonicalize_name(req.name) not in pins
        or not req.specifier.contains(pins[canonicalize_name(req.name)], prereleases=True)
    ]
    assert not stale, f"{lock} is older than its inputs, run make lock: {stale}"
    if lock in NO_DEPS:
        # exactly the listed packages: the layer builds install no dependency trees
        assert set(pins) == {canonicalize_name(req.name) for req in wanted}, lock


def test_the_deployed_layers_ship_the_versions_the_dev_venv_tests():
    dev = _pins(DEV_LOCK)
    different = {
        f"{lock}: {name}": f"{version} (dev venv {dev.get(name)})"
        for lock in SHIPPED_LOCKS
        for name, version in _pins(lock).items()
        if dev.get(name) != version
    }
    assert not different, different


def test_the_common_layer_is_what_pyproject_declares():
    """pyproject.toml's runtime dependencies mirror the common layer's list (the CLI and tests import
    what the functions run); boto3 is the Lambda runtime's own."""
    layer = {canonicalize_name(r.name): r for r in _requirements(ROOT / "layers/common/requirements.txt")}
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    declared = {canonicalize_name(r.name): r for r in map(Requirement, project)}
    declared.pop("boto3")
    assert {n: str(r) for n, r in declared.items()} == {n: str(r) for n, r in layer.items()}


def _compare(venv: str, installed: dict[str, str]):
    locked = _pins(VENV_LOCKS[venv])
    missing = {n: v for n, v in locked.items() if installed.get(n) != v and n not in locks.NOT_LOCKED}
    extra = locks.unlocked(installed, locked)
    assert not missing and not extra, (
        f"{venv} is not {VENV_LOCKS[venv]} (make deps brings it there): "
        f"locked but not installed at that version {missing}, installed but not locked {extra}"
    )


@pytest.mark.parametrize("venv", sorted(VENV_LOCKS))
def test_each_installed_venv_is_its_lock(venv: str):
    python = ROOT / venv / "bin" / "python"
    assert python.exists(), f"{venv} missing: make deps builds it"
    # the venv's own interpreter, isolated (-I): its site-packages only, as the stack runs it
    listed = subprocess.run(
        [str(python), "-I", str(ROOT / "scripts" / "locks.py"), "installed"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    _compare(venv, json.loads(listed))


def test_a_venv_sync_removes_only_what_the_lock_does_not_name():
    present = {"pip": "26.3", "numpy": "2.5.5", "leftover": "1.0", "six": "1.16.0"}
    assert locks.unlocked(present, {"numpy": ("2.5.5", []), "six": ("1.17.0", [])}) == ["leftover"]
