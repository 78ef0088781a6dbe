"""Target (b): resnet50 single-image requests (V2 REST, binary tensors) against in-process throughput.

Runs `pier serve` twice over a repository holding only resnet50: once with the demo's
dynamic batching config, once with dynamic_batching removed. Each is driven by wrk with
16 connections. The baseline is the model's own throughput at batch 16 (and batch 1, for
reference) in a separate Python process, loaded through Pier's ONNX runtime so the
session options match the server's. Targets: batched >= 0.85 of in-process images/s,
and p99 <= 2 x p50.

    .venv/bin/python bench/bench_resnet.py [--duration 20] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml

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

MODEL = "resnet50"
SHAPE = (1, 3, 224, 224)
TARGET_RATIO = 0.85
TARGET_TAIL = 2.0


def image_request() -> Request:
    """A V2 infer request carrying one float32 image as binary data, asking for binary output."""
    image = np.random.default_rng(1).standard_normal(SHAPE, dtype=np.float32)
    raw = image.astype("<f4").tobytes()
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "input",
                    "shape": list(SHAPE),
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": len(raw)},
                }
            ],
            "outputs": [{"name": "output", "parameters": {"binary_data": True}}],
        },
        separators=(",", ":"),
    ).encode()
    headers = {
        "Content-Type": "application/octet-stream",
        "Inference-Header-Content-Length": str(len(header)),
    }
    return Request("POST", f"/v2/models/{MODEL}/infer", header + raw, headers)


def check_reply(status: int, headers: dict[str, str], body: bytes) -> None:
    """Fail loudly unless the reply holds 1000 finite float32 scores."""
    if status != 200:
        raise RuntimeError(f"resnet50 infer -> {status}: {body[:300]!r}")
    lower = {k.lower(): v for k, v in headers.items()}
    json_len = int(lower.get("inference-header-content-length", len(body)))
    [out] = json.loads(body[:json_len])["outputs"]
    if out["shape"] != [1, 1000]:
        raise RuntimeError(f"resnet50 output shape {out['shape']}, expected [1, 1000]")
    if "data" in out:
        scores = np.asarray(out["data"], dtype=np.float32)
    else:
        scores = np.frombuffer(body[json_len:], dtype="<f4")
    if scores.size != 1000 or not np.isfinite(scores).all():
        raise RuntimeError("resnet50 output is not 1000 finite numbers")


def make_repos(tmp: Path) -> tuple[Path, Path]:
    """Two repositories holding only resnet50: the demo config, and one without batching."""
    from pier.serving.demo import write_demo_repository

    demo = tmp / "demo"
    write_demo_repository(demo)
    batched, plain = tmp / "batched", tmp / "plain"
    for repo in (batched, plain):
        repo.mkdir()
        shutil.copytree(demo / MODEL, repo / MODEL)
    config_file = plain / MODEL / "config.yaml"
    config = yaml.safe_load(config_file.read_text())
    config.pop("dynamic_batching")
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    return batched, plain


def in_process(model_dir: Path, batch: int, duration: float) -> dict[str, Any]:
    cmd = [
        sys.executable,
        str(BENCH_DIR / "inproc_resnet.py"),
        str(model_dir),
        "--batch",
        str(batch),
        "--duration",
        str(duration),
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"in-process baseline failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def through_server(repo: Path, args: Any, log: Path) -> WrkResult:
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
        "1",
        "--no-access-log",
    ]
    request = image_request()
    with server(argv, ["/v2/health/ready", f"/v2/models/{MODEL}/ready"], port, log) as base:
        check_reply(*request.send(base))
        run_wrk(base, request, args.connections, args.warmup, timeout_s=args.timeout)
        return run_wrk(base, request, args.connections, args.duration, timeout_s=args.timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Pier resnet50 throughput vs in-process (b)")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per measured run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of unmeasured load")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=30.0, help="wrk per-request timeout")
    parser.add_argument("--pier", type=Path, default=pier_executable())
    parser.add_argument("--baseline-only", action="store_true", help="skip the server runs")
    parser.add_argument("--keep-logs", type=Path, help="folder for server logs (default: temp)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    require_wrk()

    print(f"target (b): resnet50 via V2 binary; {machine_line()}")
    print(f"wrk -t1 -c{args.connections}, {args.duration:.0f}s per run")
    with tempfile.TemporaryDirectory(prefix="pier-bench-resnet-") as tmpdir:
        tmp = Path(tmpdir)
        logs = args.keep_logs or tmp
        logs.mkdir(parents=True, exist_ok=True)
        batched_repo, plain_repo = make_repos(tmp)
        base16 = in_process(batched_repo / MODEL, 16, args.duration / 2)
        base1 = in_process(batched_repo / MODEL, 1, args.duration / 2)
        for b in (base16, base1):
            print(
                f"  in-process batch {b['batch']:>2}: {b['images_per_s']:.1f} images/s, "
                f"per call p50 {b['p50_ms']:.0f} ms, p99 {b['p99_ms']:.0f} ms ({b['calls']} calls)"
            )
        runs: dict[str, WrkResult] = {}
        if not args.baseline_only:
            for name, repo in (("dynamic batching", batched_repo), ("no batching", plain_repo)):
                result = through_server(repo, args, logs / f"pier-{name.replace(' ', '-')}.log")
                runs[name] = result
                print(
                    f"  pier, {name}: {result.rps:.1f} images/s, p50 {result.p50_ms:.0f} ms, "
                    f"p99 {result.p99_ms:.0f} ms"
                    + (f"  ERRORS {result.errors}" if result.error_count else "")
                )

    ceiling = base16["images_per_s"]
    rows: list[list[object]] = [
        [
            f"in-process batch {b['batch']}",
            b["images_per_s"],
            f"{b['images_per_s'] / ceiling:.2f}",
            b["p50_ms"],
            b["p99_ms"],
            f"{b['p99_ms'] / b['p50_ms']:.2f}",
            0,
        ]
        for b in (base16, base1)
    ]
    for name, r in runs.items():
        rows.append(
            [
                f"pier, {name}",
                r.rps,
                f"{r.rps / ceiling:.2f}",
                r.p50_ms,
                r.p99_ms,
                f"{r.p99_ms / r.p50_ms:.2f}",
                r.error_count,
            ]
        )
    print()
    print(
        table(["path", "images/s", "x in-proc b16", "p50 ms", "p99 ms", "p99/p50", "errors"], rows)
    )
    ok = True
    if "dynamic batching" in runs:
        r = runs["dynamic batching"]
        ratio, tail = r.rps / ceiling, r.p99_ms / r.p50_ms
        ok = ratio >= TARGET_RATIO and tail <= TARGET_TAIL and r.error_count == 0
        print(
            f"\ntarget (b) {'MET' if ok else 'MISSED'}: batched {ratio:.2f} of in-process "
            f"(>= {TARGET_RATIO}), p99/p50 {tail:.2f} (<= {TARGET_TAIL})"
        )
    write_json(
        args.json,
        {
            "target": "b",
            "machine": machine_line(),
            "met": ok if runs else None,
            "in_process": [base16, base1],
            "server": {name: r.as_dict() for name, r in runs.items()},
        },
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
