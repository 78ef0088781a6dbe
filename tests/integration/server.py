"""Start a real ``pier serve`` process on 127.0.0.1 for the integration tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

PIER = [sys.executable, "-m", "pier.cli.main"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PierServer:
    """A ``pier serve`` subprocess with its log captured to a file."""

    def __init__(
        self, repo: Path | str, log_dir: Path, *args: str, env: dict[str, str] | None = None
    ) -> None:
        self.repo = repo
        self.port = free_port()
        self.grpc_port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.grpc_target = f"127.0.0.1:{self.grpc_port}"
        self.log_path = log_dir / f"pier-{self.port}.log"
        self._log = self.log_path.open("wb")
        cmd = [
            *PIER,
            "serve",
            "--model-repository",
            str(repo),
            "--http-host",
            "127.0.0.1",
            "--http-port",
            str(self.port),
            "--grpc-port",
            str(self.grpc_port),
            "--log-format",
            "json",
            "--poll-interval",
            "0.3",
            *args,
        ]
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )

    def wait_ready(self, timeout: float = 60.0, path: str = "/v2/health/ready") -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"pier serve exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if httpx.get(self.url + path, timeout=1.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"pier serve not ready after {timeout}s:\n{self.log()}")

    def log(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 30.0) -> int:
        code = terminate(self.proc, timeout)
        self._log.close()
        return code


def terminate(proc: subprocess.Popen[bytes], timeout: float = 30.0) -> int:
    """SIGTERM, wait up to ``timeout``, then SIGKILL; the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def wait_for(predicate: object, timeout: float = 20.0, interval: float = 0.1) -> None:
    """Poll ``predicate()`` until it is true."""
    assert callable(predicate)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise TimeoutError("condition not met in time")
