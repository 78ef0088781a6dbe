"""Start a real ``pier up`` on 127.0.0.1 and drive it with the real ``pier`` CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from tests.integration.server import free_port, terminate

PIER = [sys.executable, "-m", "pier"]


class PierUp:
    """A ``pier up`` subprocess with its own home folder and free ports."""

    def __init__(self, home: Path, *args: str) -> None:
        self.home = home
        self.args = args
        self.port = free_port()
        self.api_port = free_port()
        self.gateway = f"http://127.0.0.1:{self.port}"
        self.api = f"http://127.0.0.1:{self.api_port}"
        self.log_path = home.parent / f"pier-up-{self.api_port}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self.start()

    @staticmethod
    def clean_env() -> dict[str, str]:
        """This process's environment without any PIER_* setting that would leak into a test."""
        return {k: v for k, v in os.environ.items() if not k.startswith("PIER_")}

    @property
    def env(self) -> dict[str, str]:
        return {**self.clean_env(), "PIER_HOME": str(self.home)}

    def start(self) -> None:
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [
                *PIER,
                "up",
                "--port",
                str(self.port),
                "--api-port",
                str(self.api_port),
                "--log-level",
                "info",
                *self.args,
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"pier up exited:\n{self.log()}"
            try:
                if httpx.get(self.api + "/api/v1/health", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"pier up not answering:\n{self.log()}")

    @property
    def token(self) -> str:
        return (self.home / "token").read_text().strip()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def cli(
        self, *args: str, check: bool = True, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        """Run ``pier ARGS`` as a user on this machine would (the home folder finds the API)."""
        done = subprocess.run(
            [*PIER, *args],
            check=False,
            capture_output=True,
            text=True,
            env=self.env,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"pier {' '.join(args)} exited {done.returncode}\n"
                f"stdout: {done.stdout}\nstderr: {done.stderr}\n--- pier up log ---\n{self.log()[-4000:]}"
            )
        return done

    def cli_json(self, *args: str) -> Any:
        return json.loads(self.cli(*args, "-o", "json").stdout)

    def api_call(self, method: str, path: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.request(method, self.api + "/api/v1" + path, headers=headers, timeout=30, **kw)

    def kill(self) -> None:
        """SIGKILL: the control plane dies without cleaning up (its replicas live on)."""
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def stop(self, timeout: float = 60) -> int:
        assert self.proc is not None
        return terminate(self.proc, timeout)


class Load:
    """Steady requests through the gateway from a background thread; counts every outcome."""

    def __init__(self, url: str, body: dict[str, Any], threads: int = 4) -> None:
        self.url = url
        self.body = body
        self.ok = 0
        self.failures: list[str] = []
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def __enter__(self) -> Load:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(30)

    def _run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self._stop.is_set():
                try:
                    r = client.post(self.url, json=self.body)
                    outcome = None if r.status_code == 200 else f"{r.status_code} {r.text[:200]}"
                except httpx.HTTPError as exc:
                    outcome = f"{type(exc).__name__}: {exc}"
                with self._lock:
                    if outcome is None:
                        self.ok += 1
                    else:
                        self.failures.append(outcome)
                time.sleep(0.005)
