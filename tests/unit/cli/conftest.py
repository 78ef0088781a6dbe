"""Fixtures: a SQLite store, a real API over it, and `pier ARGS` run against that API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from pier.cli.main import cli
from pier.control.api import create_api
from pier.control.store import Store
from tests.unit.cli.apiserver import TOKEN, Hooks, ThreadServer, echo_gateway


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'pier.db'}")
    yield s
    s.close()


@pytest.fixture(scope="module")
def gateway() -> Iterator[str]:
    with ThreadServer(echo_gateway) as url:
        yield url


@pytest.fixture
def hooks() -> Hooks:
    return Hooks()


@pytest.fixture
def api(store: Store, gateway: str, hooks: Hooks) -> Iterator[str]:
    with ThreadServer(create_api(store, hooks, TOKEN, gateway_url=gateway)) as url:
        yield url


@pytest.fixture
def pier(api: str) -> Any:
    """Runs `pier ARGS` against the test API; returns click's Result."""

    def run(*args: str, input: str | None = None, connect: bool = True) -> Result:
        extra = ["--api", api, "--token", TOKEN] if connect else []
        return CliRunner().invoke(cli, [*args, *extra], input=input, env={"PIER_HOME": None})

    run.group = cli  # type: ignore[attr-defined]
    return run
