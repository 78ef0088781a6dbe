"""gRPC load with h2load (nghttp2): framed request bodies, bounded runs, per-request latencies.

h2load speaks plain HTTP/2, which is all a unary gRPC call is: a POST to
``/<package.Service>/<Method>`` with ``content-type: application/grpc`` and
``te: trailers``, whose body is one length-prefixed message (1 byte compressed flag,
4 bytes big-endian length, the serialized protobuf). The answer's gRPC status travels in
the trailers, which h2load does not look at: it counts an HTTP 200 carrying
``grpc-status: 13`` as a success. So a benchmark must check the status some other way;
``grpc_status`` sends the same body once with nghttp, which prints the trailers.

h2load prints no percentiles; ``--log-file`` writes one line per request of the measured
phase (start time, HTTP status, microseconds until the end of the response), and the
percentiles are computed from that.
"""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness import HOST, WrkResult

H2LOAD_MISSING = """\
h2load, the HTTP/2 load generator the gRPC benchmark uses, is not installed.
It comes with nghttp2's command-line tools (h2load and nghttp). Install them with:
    sudo apt-get install -y nghttp2-client     (Debian, Ubuntu)
    brew install nghttp2                       (macOS)
or build them from https://github.com/nghttp2/nghttp2 and put them on PATH."""

GRPC_HEADERS = {"content-type": "application/grpc", "te": "trailers"}


def require_h2load() -> tuple[str, str]:
    """The paths of h2load and nghttp, or exit with a message saying how to install them."""
    h2load, nghttp = shutil.which("h2load"), shutil.which("nghttp")
    if h2load is None or nghttp is None:
        sys.exit(H2LOAD_MISSING)
    return h2load, nghttp


def h2load_version() -> str:
    done = subprocess.run(
        [require_h2load()[0], "--version"], capture_output=True, text=True, check=False
    )
    return done.stdout.strip() or "h2load (unknown version)"


def grpc_frame(message: bytes) -> bytes:
    """One uncompressed gRPC length-prefixed message."""
    return b"\0" + struct.pack(">I", len(message)) + message


def grpc_unframe(body: bytes) -> bytes:
    """The message inside one uncompressed gRPC length-prefixed frame."""
    if len(body) < 5 or body[0] != 0:
        raise ValueError(f"not an uncompressed gRPC frame: {body[:20]!r}")
    (length,) = struct.unpack(">I", body[1:5])
    if len(body) != 5 + length:
        raise ValueError(f"gRPC frame says {length} bytes, carries {len(body) - 5}")
    return body[5:]


@dataclass(frozen=True)
class GrpcCall:
    """One unary gRPC call, sent again and again: the method path and the serialized request."""

    path: str  # "/inference.GRPCInferenceService/ModelInfer"
    message: bytes

    def url(self, port: int) -> str:
        return f"http://{HOST}:{port}{self.path}"


def _header_args() -> list[str]:
    out = []
    for k, v in GRPC_HEADERS.items():
        out += ["-H", f"{k}: {v}"]
    return out


def grpc_status(port: int, call: GrpcCall, timeout_s: float = 60.0) -> tuple[int, str]:
    """Send ``call`` once as h2load will (same body, same headers) with nghttp.

    Returns (grpc-status, grpc-message) from the trailers (or from the headers of a
    trailers-only reply); raises if there is neither.
    """
    nghttp = require_h2load()[1]
    with tempfile.TemporaryDirectory(prefix="pier-bench-grpc-") as tmp:
        body = Path(tmp) / "body"
        body.write_bytes(grpc_frame(call.message))
        cmd = [nghttp, "-v", "-n", *_header_args(), "-d", str(body), call.url(port)]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s, check=False)
    status = re.search(r"recv \(stream_id=\d+\) grpc-status: (\d+)", done.stdout)
    message = re.search(r"recv \(stream_id=\d+\) grpc-message: ?(.*)", done.stdout)
    if status is None:
        raise RuntimeError(
            f"nghttp got no grpc-status from {call.url(port)} (exit {done.returncode}):\n"
            + (done.stdout[-2000:] + done.stderr[-2000:])
        )
    return int(status.group(1)), message.group(1).strip() if message else ""


_NUMBER = r"([\d.]+)"
_TIME = r"([\d.]+)(us|ms|s)"
_SECONDS = {"us": 1e-6, "ms": 1e-3, "s": 1.0}


def _ms(value: str, unit: str) -> float:
    return float(value) * _SECONDS[unit] * 1000


def parse_h2load(stdout: str, log_lines: list[str], duration_s: float) -> WrkResult:
    """h2load's summary plus the per-request log as a WrkResult (milliseconds)."""
    finished = re.search(r"finished in " + _TIME + ", " + _NUMBER + " req/s", stdout)
    counts = re.search(
        r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
        r"(\d+) errored, (\d+) timeout",
        stdout,
    )
    codes = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", stdout)
    times = re.search(r"time for request:\s+" + r"\s+".join([_TIME] * 4), stdout)
    if finished is None or counts is None or codes is None or times is None:
        raise RuntimeError(f"could not read h2load's output:\n{stdout[-3000:]}")
    succeeded, failed, errored, timeout = (int(counts.group(i)) for i in range(4, 8))
    errors = {
        "failed": failed,
        "errored": errored,
        "timeout": timeout,
        "3xx": int(codes.group(2)),
        "4xx": int(codes.group(3)),
        "5xx": int(codes.group(4)),
    }
    mean_ms, max_ms = _ms(*times.group(5, 6)), _ms(*times.group(3, 4))
    latencies = []
    for line in log_lines:
        fields = line.split("\t")
        if len(fields) >= 3 and fields[1].startswith("2"):
            latencies.append(int(fields[2]))
    if latencies:
        p50, p90, p99 = np.percentile(np.array(latencies) / 1000, [50, 90, 99]).tolist()
    else:  # nothing logged: no percentiles to give
        p50 = p90 = p99 = float("nan")
    return WrkResult(
        requests=succeeded,
        duration_s=duration_s,
        rps=float(finished.group(3)),
        mean_ms=mean_ms,
        p50_ms=p50,
        p90_ms=p90,
        p99_ms=p99,
        max_ms=max_ms,
        errors={k: v for k, v in errors.items() if v},
    )


def run_h2load(
    port: int,
    call: GrpcCall,
    connections: int,
    duration_s: float,
    warmup_s: float = 0.0,
    threads: int = 1,
) -> WrkResult:
    """One h2load run: ``connections`` clients with one stream each, ``duration_s`` measured.

    ``-m 1`` keeps one call in flight per connection, so the concurrency is the number of
    connections, as with wrk. The run is also bounded by a wall-clock limit.
    """
    h2load = require_h2load()[0]
    with tempfile.TemporaryDirectory(prefix="pier-bench-grpc-") as tmp:
        body, log = Path(tmp) / "body", Path(tmp) / "requests.tsv"
        body.write_bytes(grpc_frame(call.message))
        cmd = [h2load, f"-c{connections}", "-m1", f"-t{min(threads, connections)}"]
        cmd += [f"-D{max(1, round(duration_s))}"]
        if warmup_s > 0:
            cmd += [f"--warm-up-time={max(1, round(warmup_s))}"]
        cmd += [f"--log-file={log}", *_header_args(), "-d", str(body), call.url(port)]
        done = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=duration_s + warmup_s + 60,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"h2load failed (exit {done.returncode}):\n{done.stdout[-2000:]}{done.stderr}"
            )
        lines = log.read_text().splitlines() if log.exists() else []
    return parse_h2load(done.stdout, lines, duration_s)
