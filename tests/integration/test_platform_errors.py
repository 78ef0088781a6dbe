"""`pier up` refuses what it cannot do with a clear message and a non-zero exit."""

from __future__ import annotations

import socket
import subprocess
from pathlib import Path

from tests.integration.platform import PIER, PierUp
from tests.integration.server import free_port


def run_pier(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**PierUp.clean_env(), "PIER_HOME": str(home)}
    return subprocess.run(
        [*PIER, *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_one_control_plane_per_home_and_busy_ports(tmp_path: Path) -> None:
    up = PierUp(tmp_path / "home")
    try:
        again = run_pier(up.home, "up", "--port", str(free_port()), "--api-port", str(free_port()))
        assert again.returncode == 1
        assert "another `pier up` is running" in again.stderr

        busy_api = run_pier(
            tmp_path / "other", "up", "--port", str(free_port()), "--api-port", str(up.api_port)
        )
        assert busy_api.returncode == 1
        assert f"management API cannot listen on 127.0.0.1:{up.api_port}" in busy_api.stderr
        assert "Traceback" not in busy_api.stderr

        busy_gateway = run_pier(
            tmp_path / "third", "up", "--port", str(up.port), "--api-port", str(free_port())
        )
        assert busy_gateway.returncode == 1
        assert f"gateway cannot listen on 127.0.0.1:{up.port}" in busy_gateway.stderr
    finally:
        assert up.stop() == 0


def test_cli_without_a_running_control_plane(tmp_path: Path) -> None:
    done = run_pier(tmp_path / "nothing-here", "list")
    assert done.returncode == 4
    assert "no running `pier up` found" in done.stderr
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    done = run_pier(tmp_path, "list", "--api", f"http://127.0.0.1:{port}", "--token", "x")
    assert done.returncode == 4
    assert f"127.0.0.1:{port}" in done.stderr
