"""gRPC next to REST: half_plus_two against a hello-world gRPC ceiling, resnet50 against in-process.

Part 1 (overhead): one `pier serve` (REST and gRPC in one process, one worker) over a
repository holding only half_plus_two, the hello-world gRPC server (hello_grpc.py) and
the hello-world REST app (hello_app.py). Single-row requests at concurrency 1 and 32:
Open Inference Protocol ModelInfer with raw_input_contents and TF Serving Predict with
tensor_content over gRPC, driven by h2load; V2 JSON and TF Serving REST, driven by wrk
(the same requests as bench_rest.py). The runs are interleaved in rounds, each gRPC run
next to its REST counterpart, and each figure is the median over the rounds. Ratios:
x hello (to the ceiling of the same transport, measured just before) and gRPC/REST (per
protocol, in the same round). Target: gRPC req/s >= REST req/s at concurrency 32.

Part 2 (resnet50): single-image ModelInfer calls with raw contents at concurrency 16,
against `pier serve` with the demo's dynamic batching and without it, next to the
model's own throughput at batch 16 in a separate process (inproc_resnet.py, as
bench_resnet.py does). Target: batched >= 0.90 of in-process.

Every scenario is checked before it is loaded: one call with a real gRPC client whose
reply is decoded and compared, and the exact bytes h2load will send, once through nghttp,
whose trailers must say grpc-status 0. After each gRPC run the model's statistics must
show no failures and at least as many successes as h2load counted: h2load itself counts
an HTTP 200 as a success whatever the grpc-status in its trailers.

    .venv/bin/python bench/bench_grpc.py [--duration 8] [--rounds 3] [--only overhead|resnet]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench_resnet import in_process, make_repos, print_report, server_results
from bench_rest import TF_REST, V2_REST, check_tf_reply, check_v2_reply
from h2load import GrpcCall, grpc_status, h2load_version, require_h2load, run_h2load
from harness import (
    BENCH_DIR,
    HOST,
    Request,
    WrkResult,
    free_port,
    machine_line,
    median_result,
    pier_executable,
    require_wrk,
    run_wrk,
    server,
    table,
    write_json,
)

MODEL = "half_plus_two"
RESNET = "resnet50"
RESNET_SHAPE = (1, 3, 224, 224)
CONCURRENCY = (1, 32)
TARGET_VS_REST = 1.0  # gRPC req/s / REST req/s at the highest concurrency, per protocol
TARGET_RESNET = 0.90  # batched gRPC images/s / in-process batch 16
V2_PATH = "/inference.GRPCInferenceService/ModelInfer"
TF_PATH = "/tensorflow.serving.PredictionService/Predict"

Check = Callable[[bytes], None]


# --- requests and their checks --------------------------------------------------------


def v2_call(model: str, name: str, array: np.ndarray[Any, Any]) -> GrpcCall:
    """A ModelInferRequest carrying one FP32 input in raw_input_contents."""
    from pier.serving.protocols.grpc.protos.inference import grpc_service_pb2 as oip

    req = oip.ModelInferRequest(model_name=model)
    req.inputs.add(name=name, datatype="FP32", shape=array.shape)
    req.raw_input_contents.append(array.astype("<f4").tobytes())
    return GrpcCall(V2_PATH, req.SerializeToString())


def tf_call(model: str, name: str, array: np.ndarray[Any, Any]) -> GrpcCall:
    """A TF Serving PredictRequest carrying one DT_FLOAT input in tensor_content."""
    from pier.serving.protocols.grpc.protos.tensorflow.core.framework import types_pb2
    from pier.serving.protocols.grpc.protos.tensorflow_serving.apis import predict_pb2

    req = predict_pb2.PredictRequest()
    req.model_spec.name = model
    tensor = req.inputs[name]
    tensor.dtype = types_pb2.DT_FLOAT
    for d in array.shape:
        tensor.tensor_shape.dim.add(size=d)
    tensor.tensor_content = array.astype("<f4").tobytes()
    return GrpcCall(TF_PATH, req.SerializeToString())


def _v2_outputs(body: bytes) -> list[tuple[str, list[int], np.ndarray[Any, Any]]]:
    from pier.serving.protocols.grpc.protos.inference import grpc_service_pb2 as oip

    reply = oip.ModelInferResponse.FromString(body)
    if len(reply.raw_output_contents) != len(reply.outputs):
        raise RuntimeError(f"ModelInfer reply without raw_output_contents: {reply}")
    return [
        (o.name, list(o.shape), np.frombuffer(raw, dtype="<f4"))
        for o, raw in zip(reply.outputs, reply.raw_output_contents, strict=True)
    ]


def check_v2(body: bytes) -> None:
    outputs = _v2_outputs(body)
    if [(n, s, a.tolist()) for n, s, a in outputs] != [("y", [1], [2.5])]:
        raise RuntimeError(f"gRPC ModelInfer gave a wrong answer: {outputs}")


def check_tf(body: bytes) -> None:
    from pier.serving.protocols.grpc.protos.tensorflow_serving.apis import predict_pb2

    reply = predict_pb2.PredictResponse.FromString(body)
    got = {
        k: ([d.size for d in t.tensor_shape.dim], np.frombuffer(t.tensor_content, "<f4").tolist())
        for k, t in reply.outputs.items()
    }
    if got != {"y": ([1], [2.5])}:
        raise RuntimeError(f"gRPC Predict gave a wrong answer: {reply}")


def check_resnet(body: bytes) -> None:
    [(name, shape, scores)] = _v2_outputs(body)
    if shape != [1, 1000] or scores.size != 1000 or not np.isfinite(scores).all():
        raise RuntimeError(f"resnet50 output '{name}' {shape} is not 1000 finite scores")


def check_rest(base: str, request: Request, check: Check) -> None:
    status, _, body = request.send(base)
    if status != 200:
        raise RuntimeError(f"{request.method} {request.path} -> {status}: {body[:300]!r}")
    check(body)


def check_grpc(port: int, call: GrpcCall, check: Check, timeout_s: float = 120.0) -> None:
    """One call with a real gRPC client (waiting for the server), then the h2load body via nghttp."""
    import grpc

    target = f"{HOST}:{port}"
    with grpc.insecure_channel(target) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout_s)
        except grpc.FutureTimeoutError:
            raise RuntimeError(f"no gRPC server on {target} after {timeout_s:.0f}s") from None
        method = channel.unary_unary(call.path)  # bytes in, bytes out
        check(method(call.message, timeout=timeout_s))
    code, message = grpc_status(port, call)
    if code != 0:
        raise RuntimeError(f"{call.path} via nghttp: grpc-status {code} ({message})")


class Stats:
    """The success and failure counts of one model, read from `GET /v2/models/<m>/stats`."""

    def __init__(self, base: str, model: str) -> None:
        self.request = Request("GET", f"/v2/models/{model}/stats")
        self.base = base

    def counts(self) -> tuple[int, int]:
        status, _, body = self.request.send(self.base)
        if status != 200:
            raise RuntimeError(f"{self.request.path} -> {status}: {body[:300]!r}")
        total_ok = total_fail = 0
        for entry in json.loads(body)["model_stats"]:
            total_ok += entry["inference_stats"]["success"]["count"]
            total_fail += entry["inference_stats"]["fail"]["count"]
        return total_ok, total_fail


def checked_h2load(
    port: int, call: GrpcCall, conns: int, stats: Stats | None, **kwargs: Any
) -> WrkResult:
    """run_h2load, then the server's own counts: failures are errors h2load cannot see."""
    before = stats.counts() if stats else (0, 0)
    r = run_h2load(port, call, conns, **kwargs)
    if stats is None:
        return r
    ok, fail = (after - b for after, b in zip(stats.counts(), before, strict=True))
    errors = dict(r.errors)
    if fail:
        errors["grpc failures"] = fail
    if ok < r.requests:
        errors["not counted by server"] = r.requests - ok
    return r if errors == r.errors else WrkResult(**{**r.as_dict(), "errors": errors})


# --- servers ----------------------------------------------------------------------------


def pier_argv(args: Any, repo: Path, http_port: int, grpc_port: int) -> list[str]:
    argv = [str(args.pier), "serve", "--model-repository", str(repo), "--http-host", HOST]
    argv += ["--http-port", str(http_port), "--grpc-port", str(grpc_port)]
    return [*argv, "--workers", "1", "--no-access-log"]


def start_pier(
    stack: contextlib.ExitStack, args: Any, repo: Path, model: str, log: Path
) -> tuple[str, int]:
    """`pier serve` with REST and gRPC, ready: (REST base URL, gRPC port)."""
    http_port, grpc_port = free_port(), free_port()
    ready = ["/v2/health/ready", f"/v2/models/{model}/ready"]
    base = stack.enter_context(
        server(pier_argv(args, repo, http_port, grpc_port), ready, http_port, log)
    )
    return base, grpc_port


def start_hello_grpc(stack: contextlib.ExitStack, log: Path, probe: GrpcCall) -> int:
    port = free_port()
    argv = [sys.executable, str(BENCH_DIR / "hello_grpc.py"), "--port", str(port)]
    stack.enter_context(server(argv, [], port, log))  # no HTTP to wait for; check_grpc waits
    check_grpc(port, probe, check_v2)  # it answers with half_plus_two's reply
    return port


def half_plus_two_repo(tmp: Path) -> Path:
    """A repository holding only half_plus_two, so the server loads nothing else."""
    from pier.serving.demo import write_demo_repository

    write_demo_repository(tmp / "demo")
    repo = tmp / "models"
    repo.mkdir()
    shutil.copytree(tmp / "demo" / MODEL, repo / MODEL)
    return repo


# --- part 1: half_plus_two ------------------------------------------------------------


@dataclass
class Scenario:
    server: str
    protocol: str
    connections: int
    load: Callable[[float], WrkResult]  # duration -> result
    hello: str | None  # the scenario whose run is this one's x hello reference
    rest: str | None = None  # for a Pier gRPC scenario: its REST counterpart
    runs: list[WrkResult] = field(default_factory=list)
    x_hello: list[float] = field(default_factory=list)
    x_rest: list[float] = field(default_factory=list)

    @property
    def key(self) -> str:
        return f"{self.server}/{self.protocol}/{self.connections}"

    @property
    def transport(self) -> str:
        return "gRPC" if self.protocol.startswith("grpc") else "REST"


def overhead(args: Any, tmp: Path, logs: Path) -> dict[str, Any]:
    one = np.array([1.0], dtype=np.float32)
    v2, tf = v2_call(MODEL, "x", one), tf_call(MODEL, "x", one)
    with contextlib.ExitStack() as stack:
        hello_grpc = start_hello_grpc(stack, logs / "grpc-hello-grpc.log", v2)
        port = free_port()
        argv = [sys.executable, str(BENCH_DIR / "hello_app.py"), "--port", str(port)]
        hello_rest = stack.enter_context(
            server(argv, ["/v2/health/ready"], port, logs / "grpc-hello-rest.log")
        )
        check_rest(hello_rest, TF_REST, lambda body: None)
        base, grpc_port = start_pier(
            stack, args, half_plus_two_repo(tmp), MODEL, logs / "grpc-pier.log"
        )
        for call, check in ((v2, check_v2), (tf, check_tf)):
            check_grpc(grpc_port, call, check)
        check_rest(base, V2_REST, check_v2_reply)
        check_rest(base, TF_REST, check_tf_reply)
        stats = Stats(base, MODEL)

        def grpc_load(port: int, call: GrpcCall, c: int, st: Stats | None) -> Any:
            return lambda d: checked_h2load(port, call, c, st, duration_s=d)

        def rest_load(url: str, request: Request, c: int) -> Any:
            return lambda d: run_wrk(url, request, c, d, args.wrk_threads)

        scenarios: list[Scenario] = []
        for c in CONCURRENCY:
            hg, hr = f"hello-world/grpc/{c}", f"hello-world/rest/{c}"
            scenarios += [
                Scenario("hello-world", "grpc", c, grpc_load(hello_grpc, v2, c, None), hg),
                Scenario("hello-world", "rest", c, rest_load(hello_rest, TF_REST, c), hr),
                Scenario("pier", "v2-rest", c, rest_load(base, V2_REST, c), hr),
                Scenario("pier", "grpc-v2", c, grpc_load(grpc_port, v2, c, stats), hg),
                Scenario("pier", "tf-rest", c, rest_load(base, TF_REST, c), hr),
                Scenario("pier", "grpc-tf", c, grpc_load(grpc_port, tf, c, stats), hg),
            ]
            scenarios[-3].rest = f"pier/v2-rest/{c}"
            scenarios[-1].rest = f"pier/tf-rest/{c}"
        by_key = {s.key: s for s in scenarios}
        for s in scenarios:  # warm every path once at the highest concurrency
            if s.connections == max(CONCURRENCY):
                s.load(args.warmup)
        for round_no in range(1, args.rounds + 1):
            for s in scenarios:
                r = s.load(args.duration)
                s.runs.append(r)
                if s.hello is not None:
                    s.x_hello.append(r.rps / by_key[s.hello].runs[-1].rps)
                if s.rest is not None:
                    s.x_rest.append(r.rps / by_key[s.rest].runs[-1].rps)
                print(
                    f"  round {round_no}  {s.server:<11} {s.protocol:<7} c={s.connections:<3}"
                    f"{r.rps:>9,.0f} req/s  p50 {r.p50_ms:.2f} ms  p99 {r.p99_ms:.2f} ms"
                    + (f"  ERRORS {r.errors}" if r.error_count else ""),
                    flush=True,
                )
    return report_overhead(scenarios)


def report_overhead(scenarios: list[Scenario]) -> dict[str, Any]:
    medians = {s.key: median_result(s.runs) for s in scenarios}
    print()
    print(
        table(
            ["server", "protocol", "conns", "req/s", "p50 ms", "p99 ms", "errors", "x hello"],
            [
                [
                    s.server,
                    s.protocol,
                    s.connections,
                    medians[s.key].rps,
                    medians[s.key].p50_ms,
                    medians[s.key].p99_ms,
                    medians[s.key].error_count,
                    f"{statistics.median(s.x_hello):.2f} ({s.transport})",
                ]
                for s in scenarios
            ],
        )
    )
    print("x hello: to the hello-world server of the same transport, per round, median")
    pairs = [s for s in scenarios if s.rest is not None]
    rows = []
    for s in pairs:
        g, r = medians[s.key], medians[s.rest or ""]
        name = "V2 (ModelInfer raw vs JSON)" if s.protocol == "grpc-v2" else "TF Serving (Predict)"
        rows.append([name, s.connections, g.rps, r.rps, f"{statistics.median(s.x_rest):.2f}"])
    print()
    print(table(["protocol", "conns", "gRPC req/s", "REST req/s", "gRPC/REST"], rows))
    for c in CONCURRENCY:
        g, r = medians[f"hello-world/grpc/{c}"], medians[f"hello-world/rest/{c}"]
        print(f"ceilings at c={c}: hello gRPC / hello REST = {g.rps / r.rps:.2f}")
    top = [s for s in pairs if s.connections == max(CONCURRENCY)]
    worst = min(top, key=lambda s: statistics.median(s.x_rest))
    ratio = statistics.median(worst.x_rest)
    errors = sum(m.error_count for m in medians.values())
    met = ratio >= TARGET_VS_REST and errors == 0
    print(
        f"\ntarget gRPC >= REST at c={max(CONCURRENCY)} {'MET' if met else 'MISSED'}: worst "
        f"gRPC/REST {ratio:.2f} ({worst.protocol}); target >= {TARGET_VS_REST:.2f}"
        + (f"; {errors} errors" if errors else "")
    )
    return {
        "met": met,
        "rows": [
            {
                "server": s.server,
                "protocol": s.protocol,
                "connections": s.connections,
                "x_hello": statistics.median(s.x_hello),
                "x_rest": statistics.median(s.x_rest) if s.x_rest else None,
                **medians[s.key].as_dict(),
                "rounds": [r.as_dict() for r in s.runs],
            }
            for s in scenarios
        ],
    }


# --- part 2: resnet50 -----------------------------------------------------------------


def resnet(args: Any, tmp: Path, logs: Path) -> dict[str, Any]:
    image = np.random.default_rng(1).standard_normal(RESNET_SHAPE, dtype=np.float32)
    call = v2_call(RESNET, "input", image)
    variants = ("dynamic batching", "no batching")
    repos = dict(zip(variants, make_repos(tmp), strict=True))
    baselines: dict[int, list[dict[str, Any]]] = {16: [], 1: []}
    runs: dict[str, list[WrkResult]] = {v: [] for v in variants}
    ratios: dict[str, list[float]] = {v: [] for v in variants}
    c = args.resnet_connections
    with contextlib.ExitStack() as stack:
        ports: dict[str, tuple[int, Stats]] = {}
        for name, repo in repos.items():
            log = logs / f"grpc-pier-resnet-{name.replace(' ', '-')}.log"
            base, port = start_pier(stack, args, repo, RESNET, log)
            check_grpc(port, call, check_resnet)
            ports[name] = (port, Stats(base, RESNET))
        for round_no in range(1, args.rounds + 1):
            for batch, share in ((16, 0.5), (1, 0.3)):
                b = in_process(repos["dynamic batching"] / RESNET, batch, args.duration * share)
                baselines[batch].append(b)
                print(
                    f"  round {round_no}  in-process batch {batch:>2}: {b['images_per_s']:6.1f} "
                    f"images/s, per call p50 {b['p50_ms']:.0f} ms",
                    flush=True,
                )
            order = list(ports.items())
            if round_no % 2 == 0:  # alternate, so neither variant always runs first
                order.reverse()
            for name, (port, stats) in order:
                r = checked_h2load(
                    port, call, c, stats, duration_s=args.duration, warmup_s=args.resnet_warmup
                )
                runs[name].append(r)
                ratios[name].append(r.rps / baselines[16][-1]["images_per_s"])
                print(
                    f"  round {round_no}  pier gRPC, {name}: {r.rps:.1f} images/s, "
                    f"p50 {r.p50_ms:.0f} ms, p99 {r.p99_ms:.0f} ms"
                    + (f"  ERRORS {r.errors}" if r.error_count else ""),
                    flush=True,
                )
    return report_resnet(baselines, runs, ratios, c)


def report_resnet(
    baselines: dict[int, list[dict[str, Any]]],
    runs: dict[str, list[WrkResult]],
    ratios: dict[str, list[float]],
    connections: int,
) -> dict[str, Any]:
    merged = print_report(baselines, runs, ratios, f"pier gRPC c={connections}, ")
    batched = merged["dynamic batching"]
    ratio = statistics.median(ratios["dynamic batching"])
    met = ratio >= TARGET_RESNET and batched.error_count == 0
    print(
        f"\ntarget resnet50 gRPC batched {'MET' if met else 'MISSED'}: {ratio:.2f} of "
        f"in-process batch 16; target >= {TARGET_RESNET:.2f}"
    )
    return {
        "met": met,
        "in_process": {"batch16": baselines[16], "batch1": baselines[1]},
        "server": server_results(merged, runs, ratios),
    }


# --- main -----------------------------------------------------------------------------


@contextlib.contextmanager
def _folders(keep: Path | None) -> Iterator[tuple[Path, Path]]:
    with tempfile.TemporaryDirectory(prefix="pier-bench-grpc-") as tmpdir:
        logs = keep or Path(tmpdir) / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        yield Path(tmpdir), logs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Pier gRPC vs REST and vs in-process")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measured run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved runs per scenario")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load")
    parser.add_argument("--only", choices=("overhead", "resnet"), help="run one part only")
    parser.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (REST runs)")
    parser.add_argument("--resnet-connections", type=int, default=16)
    parser.add_argument(
        "--resnet-warmup", type=float, default=3.0, help="h2load warm-up before each resnet run"
    )
    parser.add_argument("--pier", type=Path, default=pier_executable())
    parser.add_argument("--keep-logs", type=Path, help="folder for server logs (default: temp)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    require_h2load()
    require_wrk()

    machine = f"{machine_line()}, {h2load_version()}"
    print(f"gRPC benchmark; {machine}")
    print(
        f"h2load -t1 -m1 (gRPC) and wrk -t{args.wrk_threads} (REST), {args.rounds} rounds of "
        f"{args.duration:.0f}s runs, pier --workers 1"
    )
    results: dict[str, Any] = {}
    with _folders(args.keep_logs) as (tmp, logs):
        if args.only in (None, "overhead"):
            print(f"\n--- half_plus_two, single rows, connections {CONCURRENCY} ---")
            (tmp / "overhead").mkdir()
            results["overhead"] = overhead(args, tmp / "overhead", logs)
        if args.only in (None, "resnet"):
            print(
                f"\n--- resnet50, single images over gRPC, {args.resnet_connections} connections ---"
            )
            (tmp / "resnet").mkdir()
            results["resnet"] = resnet(args, tmp / "resnet", logs)
    met = all(part["met"] for part in results.values())
    write_json(args.json, {"target": "grpc", "machine": machine, "met": met, **results})
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
