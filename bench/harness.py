"""Shared pieces of the benchmarks: servers on free 127.0.0.1 ports, bounded wrk runs, tables."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

HOST = "127.0.0.1"
BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
WRK_SCRIPT = BENCH_DIR / "wrk_request.lua"
WRK_MISSING = """\
wrk, the load generator these benchmarks use, is not installed.
Install it with:
    sudo apt-get install -y wrk     (Debian, Ubuntu)
    brew install wrk                (macOS)
or build it from https://github.com/wg/wrk and put it on PATH."""


def require_wrk() -> str:
    """The path of wrk, or exit with a message saying how to install it."""
    path = shutil.which("wrk")
    if path is None:
        sys.exit(WRK_MISSING)
    return path


def pier_executable() -> Path:
    """The ``pier`` script installed beside this Python (the project's venv)."""
    return Path(sys.executable).parent / "pier"


def pier_serve_argv(
    pier: Path, repo: Path, port: int, workers: int = 1, access_log: bool = False
) -> list[str]:
    """``pier serve`` of the repository on 127.0.0.1:port, REST only (gRPC off)."""
    argv = [str(pier), "serve", "--model-repository", str(repo), "--http-host", HOST]
    argv += ["--http-port", str(port), "--grpc-port", "0", "--workers", str(workers)]
    return argv if access_log else [*argv, "--no-access-log"]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


@dataclass(frozen=True)
class Request:
    """One HTTP request, sent again and again by wrk."""

    method: str
    path: str
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    def send(self, base_url: str, timeout: float = 60.0) -> tuple[int, dict[str, str], bytes]:
        """Send it once with urllib; returns (status, headers, body), errors included."""
        req = urllib.request.Request(
            base_url + self.path,
            data=self.body or None,
            headers=self.headers,
            method=self.method,
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, dict(resp.headers.items()), resp.read()
        except urllib.error.HTTPError as exc:
            return exc.code, dict(exc.headers.items()), exc.read()


@dataclass(frozen=True)
class WrkResult:
    """What wrk_request.lua's done() hook reports, latencies in milliseconds."""

    requests: int
    duration_s: float
    rps: float
    mean_ms: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: dict[str, int]

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summed_errors(results: Sequence[WrkResult]) -> dict[str, int]:
    """wrk's error counts of several runs, added up by kind."""
    errors: dict[str, int] = {}
    for r in results:
        for k, v in r.errors.items():
            errors[k] = errors.get(k, 0) + v
    return errors


def median_result(results: Sequence[WrkResult]) -> WrkResult:
    """Several runs of one scenario as one: medians of the rates and latencies, sums of counts.

    The machines are noisy; a median over short interleaved runs resists a slow spell that
    would skew one long run.
    """

    def med(attr: str) -> float:
        return float(statistics.median(getattr(r, attr) for r in results))

    errors = summed_errors(results)
    return WrkResult(
        requests=sum(r.requests for r in results),
        duration_s=sum(r.duration_s for r in results),
        rps=med("rps"),
        mean_ms=med("mean_ms"),
        p50_ms=med("p50_ms"),
        p90_ms=med("p90_ms"),
        p99_ms=med("p99_ms"),
        max_ms=max(r.max_ms for r in results),
        errors=errors,
    )


def _tail(path: Path | None, lines: int = 30) -> str:
    if path is None or not path.exists():
        return "(no log kept)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def _stop(proc: subprocess.Popen[bytes], grace_s: float = 10.0) -> None:
    """SIGTERM; after ``grace_s``, or if it leaves workers behind, SIGKILL its process group.

    The server was started in a session of its own, so its process group holds only it
    and what it forked. The group is signalled before the leader is reaped: while the
    leader (or its zombie) exists, its id cannot be reused by an unrelated process.
    """
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline:
            flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
            if os.waitid(os.P_PID, proc.pid, flags) is not None:
                break
            time.sleep(0.05)
        else:
            print(f"  server pid {proc.pid} ignored SIGTERM for {grace_s:.0f}s; killing it")
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


@contextlib.contextmanager
def server(
    argv: Sequence[str],
    ready_paths: Sequence[str],
    port: int,
    log: Path | None,
    ready_timeout_s: float = 120.0,
    ready_checks: int = 1,
) -> Iterator[str]:
    """Start ``argv``, wait until every path in ``ready_paths`` answers 200, yield its URL.

    ``log`` receives the server's stdout and stderr; None sends them to /dev/null.
    ``ready_checks`` > 1 asks for that many passes over the paths in a row, each on a
    new connection: with several worker processes on one socket, each connection goes
    to any of them, so one pass may only have asked a worker that was ready early.
    """
    base = f"http://{HOST}:{port}"
    out: IO[bytes] | int = log.open("wb") if log is not None else subprocess.DEVNULL
    proc = subprocess.Popen(
        list(argv),
        stdout=out,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + ready_timeout_s
        pending = list(ready_paths) * ready_checks
        while pending:
            if proc.poll() is not None:
                raise RuntimeError(
                    f"{argv[0]} exited with status {proc.returncode} before it was ready:\n"
                    + _tail(log)
                )
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"{argv[0]} not ready after {ready_timeout_s:.0f}s "
                    f"(waiting for {pending[0]}):\n" + _tail(log)
                )
            try:
                status, _, _ = Request("GET", pending[0]).send(base, timeout=2.0)
            except OSError:
                status = 0
            if status == 200:
                pending.pop(0)
            else:
                pending = list(ready_paths) * ready_checks  # in a row: start over
                time.sleep(0.1)
        yield base
    finally:
        _stop(proc)
        if not isinstance(out, int):
            out.close()


def run_wrk(
    base_url: str,
    request: Request,
    connections: int,
    duration_s: float,
    threads: int = 1,
    timeout_s: float = 10.0,
) -> WrkResult:
    """One wrk run of ``duration_s`` seconds, bounded by a hard wall-clock limit as well."""
    wrk = require_wrk()
    if not base_url.startswith(f"http://{HOST}:"):
        raise ValueError(f"benchmarks only load {HOST}, not {base_url}")
    with tempfile.TemporaryDirectory(prefix="pier-bench-") as tmp:
        body_file = ""
        if request.body:
            body_file = str(Path(tmp) / "body")
            Path(body_file).write_bytes(request.body)
        cmd = [
            wrk,
            f"-t{min(threads, connections)}",
            f"-c{connections}",
            f"-d{max(1, round(duration_s))}s",
            f"--timeout={max(1, round(timeout_s))}s",
            "-s",
            str(WRK_SCRIPT),
            base_url + request.path,
            "--",
            request.method,
            body_file,
            *(f"{k}: {v}" for k, v in request.headers.items()),
        ]
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=duration_s + timeout_s + 30, check=False
        )
    for line in done.stdout.splitlines():
        if line.startswith("WRK_RESULT "):
            raw = json.loads(line.removeprefix("WRK_RESULT "))
            ms = {
                k.removesuffix("_us") + "_ms": v / 1000 for k, v in raw.items() if k.endswith("_us")
            }
            return WrkResult(
                requests=raw["requests"],
                duration_s=raw["duration_s"],
                rps=raw["rps"],
                errors=raw["errors"],
                **ms,
            )
    raise RuntimeError(
        f"wrk gave no result (exit {done.returncode}):\n{done.stdout}\n{done.stderr}"
    )


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table, numbers right-aligned."""

    def cell(v: object) -> str:
        if isinstance(v, float):
            return f"{v:,.2f}" if abs(v) < 100 else f"{v:,.0f}"
        return str(v)

    cells = [[cell(v) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    numeric = [all(isinstance(r[i], int | float) for r in rows) for i in range(len(headers))]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if num else v.ljust(w)
            for v, w, num in zip(values, widths, numeric, strict=True)
        ).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths]), *map(line, cells)])


def write_json(path: Path | None, payload: dict[str, Any]) -> None:
    if path is not None:
        path.write_text(json.dumps(payload, indent=2) + "\n")
        print(f"results written to {path}")


def machine_line() -> str:
    """One line describing where the numbers were taken."""
    cpu = "unknown cpu"
    with contextlib.suppress(OSError):
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                cpu = text.split(":", 1)[1].strip()
                break
    wrk = subprocess.run([require_wrk(), "--version"], capture_output=True, text=True, check=False)
    version = (wrk.stdout or wrk.stderr).split("[", 1)[0].strip()
    return f"{os.cpu_count()} cpus ({cpu}), Python {sys.version.split()[0]}, {version}"
