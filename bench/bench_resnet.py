"""Target (b): resnet50 single-image requests (V2 REST, binary tensors) against in-process throughput.

Starts `pier serve` twice over a repository holding only resnet50: once with the demo's
dynamic batching config, once with dynamic_batching removed; each is driven by wrk with
16 connections. The baseline is the model's own throughput at batch 16 (and batch 1, for
reference) in a separate Python process, loaded through Pier's ONNX runtime so the
session options match the server's. Baseline and server runs alternate in rounds, and
each ratio compares a server run with the baseline measured just before it, because this
machine's speed drifts. Targets: batched >= 0.85 of in-process images/s, p99 <= 2 x p50.

    .venv/bin/python bench/bench_resnet.py [--duration 10] [--rounds 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from harness import (
    BENCH_DIR,
    Request,
    WrkResult,
    free_port,
    machine_line,
    median_result,
    pier_executable,
    pier_serve_argv,
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


def _in_process_line(b: dict[str, Any]) -> str:
    return (
        f"in-process batch {b['batch']:>2}: {b['images_per_s']:6.1f} images/s, per call "
        f"p50 {b['p50_ms']:.0f} ms, p99 {b['p99_ms']:.0f} ms ({b['calls']} calls)"
    )


def _median_baseline(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("images_per_s", "p50_ms", "p99_ms")
    out = {k: statistics.median(r[k] for r in runs) for k in keys}
    return {**out, "batch": runs[0]["batch"], "calls": sum(r["calls"] for r in runs)}


def print_report(
    baselines: dict[int, list[dict[str, Any]]],
    runs: dict[str, list[WrkResult]],
    ratios: dict[str, list[float]],
    label: str,
) -> dict[str, WrkResult]:
    """Print the in-process and server rows (medians over rounds); return the server medians."""
    base16, base1 = _median_baseline(baselines[16]), _median_baseline(baselines[1])
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
    merged = {name: median_result(rs) for name, rs in runs.items() if rs}
    for name, m in merged.items():
        rows.append(
            [
                f"{label}{name}",
                m.rps,
                f"{statistics.median(ratios[name]):.2f}",
                m.p50_ms,
                m.p99_ms,
                f"{m.p99_ms / m.p50_ms:.2f}",
                m.error_count,
            ]
        )
    print()
    headers = ["path", "images/s", "x in-proc b16", "p50 ms", "p99 ms", "p99/p50", "errors"]
    print(table(headers, rows))
    print("(in-process p50/p99 are per call: one call is a whole batch)")
    speeds = [b["images_per_s"] for b in baselines[16]]
    print(
        f"in-process batch 16 ranged {min(speeds):.1f}-{max(speeds):.1f} images/s over the "
        "rounds: a wide range means a noisy machine, and ratios to trust less"
    )
    return merged


def server_results(
    merged: dict[str, WrkResult], runs: dict[str, list[WrkResult]], ratios: dict[str, list[float]]
) -> dict[str, Any]:
    """The server rows for --json: medians, ratio, and every round."""
    return {
        name: {
            **m.as_dict(),
            "ratio": statistics.median(ratios[name]),
            "rounds": [r.as_dict() for r in runs[name]],
        }
        for name, m in merged.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Pier resnet50 throughput vs in-process (b)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per measured run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
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
    print(
        f"{args.rounds} rounds; per round: in-process batch 16 and batch 1, then each server "
        f"under wrk -t1 -c{args.connections} for {args.duration:.0f}s (after {args.warmup:.0f}s "
        "of warm-up)"
    )
    variants = ("dynamic batching", "no batching")
    baselines: dict[int, list[dict[str, Any]]] = {16: [], 1: []}
    runs: dict[str, list[WrkResult]] = {v: [] for v in variants}
    ratios: dict[str, list[float]] = {v: [] for v in variants}
    request = image_request()
    with tempfile.TemporaryDirectory(prefix="pier-bench-resnet-") as tmpdir:
        tmp = Path(tmpdir)
        logs = args.keep_logs or tmp
        logs.mkdir(parents=True, exist_ok=True)
        repos = dict(zip(variants, make_repos(tmp), strict=True))
        with contextlib.ExitStack() as stack:
            bases: dict[str, str] = {}
            if not args.baseline_only:
                ready = ["/v2/health/ready", f"/v2/models/{MODEL}/ready"]
                for name, repo in repos.items():
                    port = free_port()
                    log = logs / f"pier-{name.replace(' ', '-')}.log"
                    bases[name] = stack.enter_context(
                        server(pier_serve_argv(args.pier, repo, port), ready, port, log)
                    )
                    check_reply(*request.send(bases[name]))
            for round_no in range(1, args.rounds + 1):
                for batch, share in ((16, 0.5), (1, 0.3)):
                    b = in_process(repos["dynamic batching"] / MODEL, batch, args.duration * share)
                    baselines[batch].append(b)
                    print(f"  round {round_no}  {_in_process_line(b)}", flush=True)
                order = list(bases.items())
                if round_no % 2 == 0:  # alternate, so neither variant always runs first
                    order.reverse()
                for name, base in order:
                    c, t = args.connections, args.timeout
                    run_wrk(base, request, c, args.warmup, timeout_s=t)
                    r = run_wrk(base, request, c, args.duration, timeout_s=t)
                    runs[name].append(r)
                    ratios[name].append(r.rps / baselines[16][-1]["images_per_s"])
                    print(
                        f"  round {round_no}  pier, {name}: {r.rps:.1f} images/s, "
                        f"p50 {r.p50_ms:.0f} ms, p99 {r.p99_ms:.0f} ms"
                        + (f"  ERRORS {r.errors}" if r.error_count else ""),
                        flush=True,
                    )

    merged = print_report(baselines, runs, ratios, "pier, ")
    met = None
    if "dynamic batching" in merged:
        m = merged["dynamic batching"]
        ratio, tail = statistics.median(ratios["dynamic batching"]), m.p99_ms / m.p50_ms
        met = ratio >= TARGET_RATIO and tail <= TARGET_TAIL and m.error_count == 0
        print(
            f"\ntarget (b) {'MET' if met else 'MISSED'}: batched {ratio:.2f} of in-process "
            f"(>= {TARGET_RATIO}), p99/p50 {tail:.2f} (<= {TARGET_TAIL})"
        )
    write_json(
        args.json,
        {
            "target": "b",
            "machine": machine_line(),
            "met": met,
            "in_process": {"batch16": baselines[16], "batch1": baselines[1]},
            "server": server_results(merged, runs, ratios),
        },
    )
    return 0 if met is not False else 1


if __name__ == "__main__":
    sys.exit(main())
