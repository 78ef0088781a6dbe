"""The in-process baseline for target (b): an ONNX model's own throughput, no server in between.

Loads the model exactly as `pier serve` does (the same runtime class, so the same
onnxruntime session options from config.yaml), then calls ``predict`` on one fixed
batch in a loop for a bounded time. Prints one JSON line:

    .venv/bin/python bench/inproc_resnet.py MODEL_DIR --batch 16 --duration 10
    {"batch": 16, "calls": ..., "images_per_s": ..., "p50_ms": ..., ...}

``--raw`` skips Pier and uses a default onnxruntime session, as a cross-check.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np


def _pier_predict(model_dir: Path, version: int) -> tuple[Any, str]:
    from pier.serving.modelconfig import load_config
    from pier.serving.runtimes import model_class

    config = load_config(model_dir)
    model = model_class(config.runtime or "onnx")(model_dir / str(version), config)
    model.load()
    name = model.inputs[0].name
    return lambda x: model.predict({name: x}), name


def _raw_predict(model_dir: Path, version: int) -> tuple[Any, str]:
    import onnxruntime as ort

    files = sorted((model_dir / str(version)).glob("*.onnx"))
    session = ort.InferenceSession(str(files[0]), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x}), name


def main() -> None:
    parser = argparse.ArgumentParser(description="in-process throughput of one ONNX model")
    parser.add_argument("model_dir", type=Path, help="MODELS/<model> (holding config.yaml)")
    parser.add_argument("--version", type=int, default=1)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of timed calls")
    parser.add_argument("--raw", action="store_true", help="plain onnxruntime, not Pier's runtime")
    args = parser.parse_args()

    predict, _ = (_raw_predict if args.raw else _pier_predict)(args.model_dir, args.version)
    images = np.random.default_rng(0).standard_normal((args.batch, 3, 224, 224), dtype=np.float32)
    predict(images)  # the first call allocates; leave it out
    times: list[float] = []
    start = time.perf_counter()
    while time.perf_counter() - start < args.duration or len(times) < 3:
        t0 = time.perf_counter()
        predict(images)
        times.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    ms = np.array(times) * 1000
    print(
        json.dumps(
            {
                "batch": args.batch,
                "calls": len(times),
                "images_per_s": args.batch * len(times) / elapsed,
                "p50_ms": float(np.percentile(ms, 50)),
                "p99_ms": float(np.percentile(ms, 99)),
                "min_ms": float(ms.min()),
                "via": "onnxruntime" if args.raw else "pier runtime",
            }
        )
    )


if __name__ == "__main__":
    main()
