"""Run the benchmarks, (a) REST overhead, (b) resnet50, (c) gRPC and (d) the gateway, and sum up.

    .venv/bin/python bench/run_all.py [--quick] [--out bench/results]

Each benchmark runs in its own process, one after the other, so they never share the CPU.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from harness import BENCH_DIR, require_wrk


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="one short round each, for a smoke test"
    )
    parser.add_argument(
        "--hello-only", action="store_true", help="only the hello-world ceiling of (a)"
    )
    parser.add_argument("--out", type=Path, help="folder for JSON results and server logs")
    args = parser.parse_args()
    require_wrk()

    out = args.out or Path(f"/tmp/pier-bench-{time.strftime('%Y%m%d-%H%M%S')}")
    out.mkdir(parents=True, exist_ok=True)
    quick_rest = ["--duration", "3", "--rounds", "1"] if args.quick else []
    quick_resnet = ["--duration", "6", "--rounds", "1"] if args.quick else []
    quick_grpc = ["--duration", "3", "--rounds", "1"] if args.quick else []
    logs = ["--keep-logs", str(out / "logs")]
    rest = [*quick_rest, *logs, "--json", str(out / "rest.json")]
    resnet = [*quick_resnet, *logs, "--json", str(out / "resnet.json")]
    grpc = [*quick_grpc, *logs, "--json", str(out / "grpc.json")]
    gateway = [*quick_rest, *logs, "--json", str(out / "gateway.json")]
    if args.hello_only:
        rest.append("--hello-only")
    jobs = [("(a) REST overhead", "bench_rest.py", rest)]
    if not args.hello_only:
        jobs.append(("(b) resnet50", "bench_resnet.py", resnet))
        jobs.append(("(c) gRPC vs REST, resnet50 over gRPC", "bench_grpc.py", grpc))
        jobs.append(("(d) gateway vs straight to the replicas", "bench_gateway.py", gateway))

    results = []
    for title, script, extra in jobs:
        print(f"\n=== {title} ===", flush=True)
        json_file = Path(extra[extra.index("--json") + 1])
        json_file.unlink(missing_ok=True)
        done = subprocess.run([sys.executable, str(BENCH_DIR / script), *extra], check=False)
        if json_file.exists():
            met = json.loads(json_file.read_text()).get("met")
            state = {True: "met", False: "MISSED", None: "not measured"}[met]
        else:
            met, state = False, f"FAILED (exit {done.returncode}), see the output above"
        results.append((title, met, state))

    print("\n=== summary ===")
    for title, _, state in results:
        print(f"  {title}: {state}")
    print(f"results and server logs in {out}")
    return 0 if all(met is not False for _, met, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
