"""The gateway's cost: requests/s and latency through `pier.gateway` vs straight to the replicas.

Starts N (default 2) `pier serve` replicas of one demo model (``--model``: half_plus_two,
the default, or iris, the sklearn classifier, which costs the replica more per request)
and a gateway process (`python -m pier.gateway --route MODEL=...`) on free 127.0.0.1 ports, then drives
both with wrk: TF Serving predict JSON and V2 infer JSON, at 1 and 32 connections.

Direct load is spread over the same replicas: one wrk process per replica, each with its
share of the connections, run at the same time; their requests/s are summed, p50 is the
request-weighted mean of their p50s and p99 the worst of their p99s. At 1 connection there
is a single wrk against the first replica. Gateway load is one wrk process with all the
connections. Runs are interleaved in rounds (direct, gateway, ...) and each figure is the
median over the rounds. Target: gateway/direct >= 0.80 at 32 connections, and p50 added
<= 1 ms at every concurrency.

    .venv/bin/python bench/bench_gateway.py [--model half_plus_two|iris] [--replicas 2]
        [--duration 4] [--rounds 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from bench_rest import JSON, TF_REST, V2_REST, _checked, check_tf_reply, check_v2_reply
from harness import (
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
    summed_errors,
    table,
    write_json,
)

TARGET_RATIO = 0.80
TARGET_P50_MS = 1.0
CONCURRENCY = (1, 32)
IRIS_TF = Request("POST", "/v1/models/iris:predict", b'{"instances":[[5.1,3.5,1.4,0.2]]}', JSON)
#: the iris model's input, as GET /v2/models/iris reports it: "input", FP64, [-1, 4]
IRIS_V2 = Request(
    "POST",
    "/v2/models/iris/infer",
    b'{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP64","data":[5.1,3.5,1.4,0.2]}]}',
    JSON,
)


def check_iris_tf(body: bytes) -> None:
    if json.loads(body)["predictions"][0]["predict"] != 0:
        raise RuntimeError(f"TF Serving REST gave a wrong answer: {body[:200]!r}")


def check_iris_v2(body: bytes) -> None:
    outputs = {o["name"]: o["data"] for o in json.loads(body)["outputs"]}
    if outputs.get("predict") != [0]:
        raise RuntimeError(f"V2 REST gave a wrong answer: {body[:200]!r}")


#: model -> the protocols run against it: (name, request, answer check)
MODELS: dict[str, tuple[tuple[str, Request, Callable[[bytes], None]], ...]] = {
    "half_plus_two": (("tf-rest", TF_REST, check_tf_reply), ("v2-json", V2_REST, check_v2_reply)),
    "iris": (("tf-rest", IRIS_TF, check_iris_tf), ("v2-json", IRIS_V2, check_iris_v2)),
}


def demo_repo(tmp: Path, model: str) -> Path:
    """A repository holding only ``model``, so the replicas load nothing else."""
    from pier.serving.demo import write_demo_repository

    full = tmp / "demo"
    write_demo_repository(full, names=[model])
    repo = tmp / "models"
    repo.mkdir()
    shutil.copytree(full / model, repo / model)
    return repo


@dataclass
class Scenario:
    protocol: str
    request: Request
    connections: int
    direct: list[WrkResult] = field(default_factory=list)
    gateway: list[WrkResult] = field(default_factory=list)


def combine(results: list[WrkResult]) -> WrkResult:
    """Concurrent wrk runs as one: summed rates, request-weighted p50/mean, worst p90/p99."""
    if len(results) == 1:
        return results[0]
    total = sum(r.requests for r in results) or 1
    errors = summed_errors(results)
    return WrkResult(
        requests=sum(r.requests for r in results),
        duration_s=max(r.duration_s for r in results),
        rps=sum(r.rps for r in results),
        mean_ms=sum(r.mean_ms * r.requests for r in results) / total,
        p50_ms=sum(r.p50_ms * r.requests for r in results) / total,
        p90_ms=max(r.p90_ms for r in results),
        p99_ms=max(r.p99_ms for r in results),
        max_ms=max(r.max_ms for r in results),
        errors=errors,
    )


def run_direct(bases: list[str], request: Request, connections: int, duration: float) -> WrkResult:
    """Load every replica at once, the connections split between them."""
    n = min(len(bases), connections)
    shares = [connections // n + (1 if i < connections % n else 0) for i in range(n)]
    with ThreadPoolExecutor(n) as pool:
        runs = list(pool.map(lambda i: run_wrk(bases[i], request, shares[i], duration), range(n)))
    return combine(runs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Gateway overhead vs direct to the replicas")
    parser.add_argument("--model", choices=sorted(MODELS), default="half_plus_two")
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument("--duration", type=float, default=4.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--pier", type=Path, default=pier_executable())
    parser.add_argument("--keep-logs", type=Path, help="folder for server logs (default: temp)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    require_wrk()
    model = args.model
    protocols = MODELS[model]
    print(f"gateway overhead; {machine_line()}")
    print(
        f"{args.replicas} replicas of {model}; direct = one wrk per replica with its share of "
        f"the connections, summed; {args.rounds} rounds of {args.duration:.0f}s runs"
    )
    scenarios = [Scenario(name, request, c) for c in CONCURRENCY for name, request, _ in protocols]
    with tempfile.TemporaryDirectory(prefix="pier-bench-gateway-") as tmpdir:
        logs = args.keep_logs or Path(tmpdir)
        logs.mkdir(parents=True, exist_ok=True)
        repo = demo_repo(Path(tmpdir), model)
        with contextlib.ExitStack() as stack:
            bases = []
            ready = ["/v2/health/ready", f"/v2/models/{model}/ready"]
            for i in range(args.replicas):
                port = free_port()
                argv_ = pier_serve_argv(args.pier, repo, port)
                log = logs / f"replica-{i}.log"
                bases.append(stack.enter_context(server(argv_, ready, port, log)))
            port = free_port()
            route = f"{model}=" + ",".join(b.removeprefix("http://") for b in bases)
            gw_argv = [sys.executable, "-m", "pier.gateway", "--port", str(port)]
            gw_argv += ["--route", route]
            gateway = stack.enter_context(server(gw_argv, ready, port, logs / "gateway.log"))
            for _, request, check in protocols:
                for base in [*bases, gateway]:
                    _checked(base, request, check)
            run_direct(bases, protocols[-1][1], 32, args.warmup)
            run_wrk(gateway, protocols[-1][1], 32, args.warmup)
            for round_no in range(1, args.rounds + 1):
                for s in scenarios:
                    d = run_direct(bases, s.request, s.connections, args.duration)
                    g = run_wrk(gateway, s.request, s.connections, args.duration)
                    s.direct.append(d)
                    s.gateway.append(g)
                    print(
                        f"  round {round_no}  {s.protocol:<8} c={s.connections:<3} "
                        f"direct {d.rps:>8,.0f} req/s p50 {d.p50_ms:.2f} ms | gateway "
                        f"{g.rps:>8,.0f} req/s p50 {g.p50_ms:.2f} ms  x{g.rps / d.rps:.2f}"
                        + (
                            f"  ERRORS {d.errors} {g.errors}"
                            if d.error_count + g.error_count
                            else ""
                        ),
                        flush=True,
                    )
    rows = []
    for s in scenarios:
        d, g = median_result(s.direct), median_result(s.gateway)
        ratio = statistics.median(
            gr.rps / dr.rps for gr, dr in zip(s.gateway, s.direct, strict=True)
        )
        added = statistics.median(
            gr.p50_ms - dr.p50_ms for gr, dr in zip(s.gateway, s.direct, strict=True)
        )
        rows.append((s, d, g, ratio, added))
    print()
    print(
        table(
            [
                "protocol",
                "conns",
                "direct req/s",
                "gw req/s",
                "ratio",
                "direct p50",
                "gw p50",
                "p50 added ms",
                "direct p99",
                "gw p99",
                "errors",
            ],
            [
                [
                    s.protocol,
                    s.connections,
                    d.rps,
                    g.rps,
                    f"{ratio:.2f}",
                    d.p50_ms,
                    g.p50_ms,
                    f"{added:+.2f}",
                    d.p99_ms,
                    g.p99_ms,
                    d.error_count + g.error_count,
                ]
                for s, d, g, ratio, added in rows
            ],
        )
    )
    # The throughput ratio is judged under load (the most connections). At one connection
    # requests/s is 1 / latency, and a proxy puts a second full hop in series on the same
    # two cores, so that ratio is shown but judged through the p50 it adds instead.
    loaded = [row for row in rows if row[0].connections == max(CONCURRENCY)]
    worst = min(loaded, key=lambda row: row[3])
    most_added = max(rows, key=lambda row: row[4])
    met = (
        worst[3] >= TARGET_RATIO
        and most_added[4] <= TARGET_P50_MS
        and not any(d.error_count + g.error_count for _, d, g, _, _ in rows)
    )
    print(
        f"\ngateway target {'MET' if met else 'MISSED'}: worst ratio at c={max(CONCURRENCY)} "
        f"{worst[3]:.2f} ({worst[0].protocol}; target >= {TARGET_RATIO:.2f}), "
        f"most p50 added {most_added[4]:+.2f} ms ({most_added[0].protocol}, "
        f"c={most_added[0].connections}; target <= {TARGET_P50_MS:.1f} ms)"
    )
    payload = {
        "target": "gateway",
        "model": model,
        "machine": machine_line(),
        "replicas": args.replicas,
        "direct_load": "one wrk per replica, connections split, rates summed",
        "met": met,
        "rows": [
            {
                "protocol": s.protocol,
                "connections": s.connections,
                "ratio": ratio,
                "p50_added_ms": added,
                "direct": d.as_dict(),
                "gateway": g.as_dict(),
            }
            for s, d, g, ratio, added in rows
        ],
    }
    print("JSON " + json.dumps(payload))
    write_json(args.json, payload)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
