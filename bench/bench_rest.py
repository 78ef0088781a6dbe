"""Target (a): half_plus_two single-row requests over REST, against the hello-world ceiling.

Starts the hello-world app and `pier serve` (one worker) on free 127.0.0.1 ports in turn,
drives each with wrk at concurrency 1 and 32, and prints requests/s, p50, p99 and the
ratio to the hello-world app at the same concurrency. Target: ratio >= 0.60.

    .venv/bin/python bench/bench_rest.py [--duration 10] [--hello-only] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness import (
    BENCH_DIR,
    HOST,
    Request,
    WrkResult,
    free_port,
    machine_line,
    pier_executable,
    require_wrk,
    run_wrk,
    server,
    table,
    write_json,
)

MODEL = "half_plus_two"
TARGET = 0.60
JSON = {"Content-Type": "application/json"}
TF_REST = Request("POST", f"/v1/models/{MODEL}:predict", b'{"instances":[1.0]}', JSON)
V2_REST = Request(
    "POST",
    f"/v2/models/{MODEL}/infer",
    b'{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1.0]}]}',
    JSON,
)
CONCURRENCY = (1, 32)


@dataclass
class Row:
    server: str
    protocol: str
    connections: int
    result: WrkResult
    ratio: float | None = None


def _check_tf(body: bytes) -> None:
    if json.loads(body) != {"predictions": [2.5]}:
        raise RuntimeError(f"TF Serving REST gave a wrong answer: {body[:200]!r}")


def _check_v2(body: bytes) -> None:
    outputs = json.loads(body)["outputs"]
    if len(outputs) != 1 or outputs[0]["name"] != "y" or outputs[0]["data"] != [2.5]:
        raise RuntimeError(f"V2 REST gave a wrong answer: {body[:200]!r}")


def _checked(base: str, request: Request, check: Any) -> None:
    """One request by hand first: a benchmark of error responses measures nothing."""
    status, _, body = request.send(base)
    if status != 200:
        raise RuntimeError(f"{request.method} {request.path} -> {status}: {body[:300]!r}")
    check(body)


def _drive(
    base: str, name: str, protocol: str, request: Request, conns: tuple[int, ...], args: Any
) -> list[Row]:
    run_wrk(base, request, max(conns), args.warmup, threads=args.wrk_threads)  # warm-up
    rows = []
    for c in conns:
        result = run_wrk(base, request, c, args.duration, threads=args.wrk_threads)
        print(
            f"  {name:<24} {protocol:<8} c={c:<3} {result.rps:>9,.0f} req/s  "
            f"p50 {result.p50_ms:.2f} ms  p99 {result.p99_ms:.2f} ms"
            + (f"  ERRORS {result.errors}" if result.error_count else "")
        )
        rows.append(Row(name, protocol, c, result))
    return rows


def _hello(args: Any, logs: Path) -> list[Row]:
    port = free_port()
    argv = [sys.executable, str(BENCH_DIR / "hello_app.py"), "--port", str(port)]
    with server(argv, ["/v2/health/ready"], port, logs / "hello.log") as base:
        _checked(base, TF_REST, lambda body: None)
        return _drive(base, "hello-world", "any", TF_REST, CONCURRENCY, args)


def _pier(args: Any, repo: Path, logs: Path, access_log: bool) -> list[Row]:
    port = free_port()
    argv = [
        str(args.pier),
        "serve",
        "--model-repository",
        str(repo),
        "--http-host",
        HOST,
        "--http-port",
        str(port),
        "--workers",
        str(args.workers),
    ]
    if not access_log:
        argv.append("--no-access-log")
    # With the access log on, its lines go to /dev/null: the cost of formatting and
    # writing them shows, not the speed of a disk.
    log = None if access_log else logs / "pier.log"
    ready = ["/v2/health/ready", f"/v2/models/{MODEL}/ready"]
    name = f"pier w={args.workers}" + (" +access log" if access_log else "")
    with server(argv, ready, port, log) as base:
        _checked(base, TF_REST, _check_tf)
        _checked(base, V2_REST, _check_v2)
        if access_log:
            return _drive(base, name, "v2-json", V2_REST, (32,), args)
        rows = _drive(base, name, "tf-rest", TF_REST, CONCURRENCY, args)
        return rows + _drive(base, name, "v2-json", V2_REST, CONCURRENCY, args)


def _demo_repo(tmp: Path) -> Path:
    """A repository holding only half_plus_two, so the server loads nothing else."""
    from pier.serving.demo import write_demo_repository

    full = tmp / "demo"
    write_demo_repository(full)
    repo = tmp / "models"
    repo.mkdir()
    shutil.copytree(full / MODEL, repo / MODEL)
    return repo


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Pier REST overhead vs hello-world (target a)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load")
    parser.add_argument(
        "--wrk-threads",
        type=int,
        default=1,
        help="wrk threads (1 leaves the other core of a 2-core box to the server)",
    )
    parser.add_argument("--workers", type=int, default=1, help="pier serve --workers")
    parser.add_argument("--pier", type=Path, default=pier_executable())
    parser.add_argument("--hello-only", action="store_true", help="measure only the ceiling")
    parser.add_argument("--keep-logs", type=Path, help="folder for server logs (default: temp)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    require_wrk()

    print(f"target (a): REST overhead; {machine_line()}")
    print(f"wrk -t{args.wrk_threads}, {args.duration:.0f}s per run, connections {CONCURRENCY}")
    with tempfile.TemporaryDirectory(prefix="pier-bench-rest-") as tmpdir:
        tmp = Path(tmpdir)
        logs = args.keep_logs or tmp
        logs.mkdir(parents=True, exist_ok=True)
        rows = _hello(args, logs)
        if not args.hello_only:
            repo = _demo_repo(tmp)
            rows += _pier(args, repo, logs, access_log=False)
            rows += _pier(args, repo, logs, access_log=True)

    ceiling = {r.connections: r.result.rps for r in rows if r.server == "hello-world"}
    for r in rows:
        r.ratio = r.result.rps / ceiling[r.connections]
    print()
    print(
        table(
            ["server", "protocol", "conns", "req/s", "p50 ms", "p99 ms", "errors", "x hello"],
            [
                [
                    r.server,
                    r.protocol,
                    r.connections,
                    r.result.rps,
                    r.result.p50_ms,
                    r.result.p99_ms,
                    r.result.error_count,
                    f"{r.ratio:.2f}",
                ]
                for r in rows
            ],
        )
    )
    headline = [r for r in rows if r.server.startswith("pier") and "access" not in r.server]
    ok = True
    if headline:
        worst = min(headline, key=lambda r: r.ratio or 0.0)
        ok = (worst.ratio or 0.0) >= TARGET and not any(r.result.error_count for r in rows)
        verdict = "MET" if ok else "MISSED"
        print(
            f"\ntarget (a) {verdict}: worst ratio {worst.ratio:.2f} "
            f"({worst.protocol}, c={worst.connections}); target >= {TARGET:.2f}"
        )
    write_json(
        args.json,
        {
            "target": "a",
            "machine": machine_line(),
            "met": ok if headline else None,
            "rows": [
                {
                    "server": r.server,
                    "protocol": r.protocol,
                    "connections": r.connections,
                    "ratio": r.ratio,
                    **r.result.as_dict(),
                }
                for r in rows
            ],
        },
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
