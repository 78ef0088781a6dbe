"""The Makefile's install levels: `make demo` installs the demo set, a later `make test` adds the rest."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="needs make (README)")


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """The files the install rules read, and a venv that already has uv."""
    for name in ("Makefile", "pyproject.toml", "setup.py"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "uv").touch()
    return tmp_path


def _plan(checkout: Path, target: str) -> str:
    """What ``make -n target`` would run."""
    # Run from `make test` itself, make would pass its own flags and level down.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    out = subprocess.run(
        ["make", "--no-print-directory", "-n", target],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout


def _touch(path: Path, age: float = 0.0) -> None:
    path.touch()
    when = time.time() - age
    os.utime(path, (when, when))


def test_demo_installs_the_demo_set_only(checkout: Path) -> None:
    plan = _plan(checkout, "install")
    assert "-e '.[demo]'" in plan
    assert "torch" not in plan and "[all,dev]" not in plan


def test_test_after_demo_adds_the_rest(checkout: Path) -> None:
    for name in ("Makefile", "pyproject.toml", "setup.py"):
        _touch(checkout / name, age=60)
    _touch(checkout / ".venv" / ".installed-demo")
    assert "Nothing to be done" in _plan(checkout, "install")  # the demo set is there
    plan = _plan(checkout, "install-test")
    assert "-e '.[demo]'" not in plan
    assert "pip install --quiet torch==2.13.0" in plan and "-e '.[all,dev]'" in plan


def test_fresh_clone_test_installs_everything(checkout: Path) -> None:
    plan = _plan(checkout, "test")
    assert plan.index("-e '.[demo]'") < plan.index("torch==2.13.0") < plan.index("[all,dev]")
    assert plan.index("[all,dev]") < plan.index(".venv/bin/pytest")


def test_changed_metadata_reinstalls_both_levels(checkout: Path) -> None:
    _touch(checkout / ".venv" / ".installed-demo", age=60)
    _touch(checkout / ".venv" / ".installed-test", age=60)
    _touch(checkout / "pyproject.toml")
    plan = _plan(checkout, "install-test")
    assert "-e '.[demo]'" in plan and "-e '.[all,dev]'" in plan
