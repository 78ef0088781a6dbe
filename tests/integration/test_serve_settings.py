"""`pier serve` reads its settings from the command line, then PIER_* variables, then defaults."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from pier.config import ServerSettings
from pier.serving.demo import write_demo_repository
from tests.integration.server import PIER, free_port, terminate

REFERENCE = {"instances": [1.0, 2.0, 5.0]}


@pytest.fixture(scope="module")
def demo_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("demo")
    write_demo_repository(root, ["half_plus_two"])
    return root


def _env(**settings: str) -> dict[str, str]:
    """This environment without PIER_* variables, plus the given ones."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("PIER_")}
    return {**clean, **settings}


class Served:
    """A `pier serve` started with the given arguments and environment, its output in a file."""

    def __init__(self, log: Path, args: list[str], env: dict[str, str]) -> None:
        self.log = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(
            [*PIER, "serve", *args], stdout=self._out, stderr=subprocess.STDOUT, env=env
        )

    def predict(self, port: int, timeout: float = 60.0) -> httpx.Response:
        """The reference call on ``port``, once the server there says it is ready."""
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"pier serve exited:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{base}/v2/health/ready", timeout=2.0).status_code == 200:
                    return httpx.post(
                        f"{base}/v1/models/half_plus_two:predict", json=REFERENCE, timeout=10.0
                    )
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"nothing answered on port {port}:\n{self.log.read_text()}")

    def stop(self) -> None:
        terminate(self.proc)
        self._out.close()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[[list[str], dict[str, str]], Served]]:
    started: list[Served] = []

    def start(args: list[str], env: dict[str, str]) -> Served:
        started.append(Served(tmp_path / f"serve-{len(started)}.log", args, env))
        return started[-1]

    yield start
    for s in started:
        s.stop()


Serve = Callable[[list[str], dict[str, str]], Served]


def test_model_repository_from_the_environment(serve: Serve, demo_repo: Path) -> None:
    port = free_port()
    srv = serve(
        ["--http-host", "127.0.0.1", "--http-port", str(port), "--grpc-port", "0"],
        _env(PIER_MODEL_REPOSITORY=str(demo_repo)),
    )
    r = srv.predict(port)
    assert r.status_code == 200 and r.json() == {"predictions": [2.5, 3.0, 4.5]}
    srv.stop()
    assert '"type":"access"' in srv.log.read_text()  # on by default


def test_every_setting_from_the_environment(serve: Serve, demo_repo: Path) -> None:
    port = free_port()
    srv = serve(
        [],
        _env(
            PIER_MODEL_REPOSITORY=str(demo_repo),
            PIER_HTTP_HOST="127.0.0.1",
            PIER_HTTP_PORT=str(port),
            PIER_GRPC_PORT="0",
            PIER_ACCESS_LOG="false",
            PIER_LOG_FORMAT="json",
        ),
    )
    r = srv.predict(port)
    assert r.status_code == 200 and r.json() == {"predictions": [2.5, 3.0, 4.5]}
    srv.stop()
    # PIER_ACCESS_LOG=false: no access line on stdout for the call above.
    assert '"type":"access"' not in srv.log.read_text()


def test_command_line_beats_the_environment(serve: Serve, demo_repo: Path) -> None:
    env_port, flag_port = free_port(), free_port()
    srv = serve(
        [
            "--model",
            f"half_plus_two={demo_repo / 'half_plus_two'}",
            "--http-port",
            str(flag_port),
            "--http-host",
            "127.0.0.1",
        ],
        # A repository in the environment gives way to --model on the command line.
        _env(
            PIER_MODEL_REPOSITORY="/no/such/folder",
            PIER_HTTP_PORT=str(env_port),
            PIER_GRPC_PORT="0",
        ),
    )
    r = srv.predict(flag_port)
    assert r.status_code == 200 and r.json() == {"predictions": [2.5, 3.0, 4.5]}
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{env_port}/v2/health/live", timeout=1.0)


def test_bad_environment_value_names_the_variable(demo_repo: Path) -> None:
    out = subprocess.run(
        [*PIER, "serve"],
        env=_env(PIER_MODEL_REPOSITORY=str(demo_repo), PIER_WORKERS="0"),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 2 and "PIER_WORKERS" in out.stderr, out.stderr


def test_help_lists_every_setting() -> None:
    out = subprocess.run(
        [*PIER, "serve", "--help"], env=_env(), capture_output=True, text=True, check=True
    )
    for name in ServerSettings.model_fields:
        assert f"PIER_{name.upper()}" in out.stdout, name
