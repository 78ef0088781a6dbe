"""Drive a server with tritonclient's gRPC client; print one JSON object of what came back.

Run as ``python triton_grpc.py HOST:PORT SCENARIO``. tritonclient registers the
``inference.*`` protobuf messages itself, so it cannot share a process with Pier's own
generated modules: the tests call this script instead of importing tritonclient.grpc.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException


def _error(fn: Callable[[], Any]) -> dict[str, Any]:
    try:
        fn()
    except InferenceServerException as exc:
        return {"status": exc.status(), "message": exc.message()}
    return {"status": None}


def basics(c: grpcclient.InferenceServerClient) -> dict[str, Any]:
    x = np.array([[1, 2, 3, 4]], dtype=np.float32)
    inp = grpcclient.InferInput("x", [1, 4], "FP32")
    inp.set_data_from_numpy(x)
    result = c.infer(
        "scaler", [inp], model_version="2", outputs=[grpcclient.InferRequestedOutput("y")]
    )
    text = grpcclient.InferInput("text", [2], "BYTES")
    text.set_data_from_numpy(np.array([b"hi", "é".encode()], dtype=object))
    strings = c.infer("pyfunc", [text])
    meta = c.get_model_metadata("half_plus_two", as_json=True)
    config = c.get_model_config("batched", as_json=True)["config"]
    half = grpcclient.InferInput("in_fp16", [1, 2], "FP16")
    half.set_data_from_numpy(np.array([[0.5, -2.0]], np.float16))
    # all_types needs every input; send them all as zeros except fp16
    inputs = [half]
    for name, dt, np_dt in [
        ("bool", "BOOL", np.bool_),
        ("uint8", "UINT8", np.uint8),
        ("uint16", "UINT16", np.uint16),
        ("uint32", "UINT32", np.uint32),
        ("uint64", "UINT64", np.uint64),
        ("int8", "INT8", np.int8),
        ("int16", "INT16", np.int16),
        ("int32", "INT32", np.int32),
        ("int64", "INT64", np.int64),
        ("fp32", "FP32", np.float32),
        ("fp64", "FP64", np.float64),
    ]:
        t = grpcclient.InferInput(f"in_{name}", [1, 2], dt)
        t.set_data_from_numpy(np.ones((1, 2), np_dt))
        inputs.append(t)
    b = grpcclient.InferInput("in_bytes", [1, 2], "BYTES")
    b.set_data_from_numpy(np.array([[b"a", b"b"]], dtype=object))
    inputs.append(b)
    every = c.infer("all_types", inputs)
    stats = c.get_inference_statistics("scaler", as_json=True)
    return {
        "live": c.is_server_live(),
        "ready": c.is_server_ready(),
        "model_ready": c.is_model_ready("half_plus_two"),
        "broken_ready": c.is_model_ready("broken"),
        "server": c.get_server_metadata(as_json=True),
        "metadata": meta,
        "config": config,
        "y": result.as_numpy("y").tolist(),
        "length": strings.as_numpy("length").tolist(),
        "upper": [v.decode() for v in strings.as_numpy("upper").tolist()],
        "fp16": every.as_numpy("out_fp16").tolist(),
        "uint64": every.as_numpy("out_uint64").tolist(),
        "stats": stats,
        "unknown_model": _error(lambda: c.infer("nope", [inp])),
        "bad_dtype": _error(lambda: c.infer("half_plus_two", [_fp64()])),
        "bad_version": _error(lambda: c.get_model_metadata("half_plus_two", model_version="7")),
    }


def _fp64() -> grpcclient.InferInput:
    t = grpcclient.InferInput("x", [1], "FP64")
    t.set_data_from_numpy(np.array([1.0]))
    return t


def repository(c: grpcclient.InferenceServerClient) -> dict[str, Any]:
    before = c.get_model_repository_index(as_json=True)
    c.load_model("m")
    x = grpcclient.InferInput("x", [1, 4], "FP32")
    x.set_data_from_numpy(np.ones((1, 4), np.float32))
    y = c.infer("m", [x]).as_numpy("y").tolist()
    c.unload_model("m")
    after_unload = _error(lambda: c.infer("m", [x]))
    c.load_model("m", config=json.dumps({"version_policy": {"specific": [1]}}))
    stats = c.get_inference_statistics(as_json=True)
    return {
        "before": before,
        "y": y,
        "after_unload": after_unload,
        "ghost": _error(lambda: c.load_model("ghost")),
        "bad_config": _error(lambda: c.load_model("m", config="{not json")),
        "stats_models": sorted(s["name"] for s in stats.get("model_stats", [])),
    }


def stream(c: grpcclient.InferenceServerClient) -> dict[str, Any]:
    import queue

    results: queue.Queue[Any] = queue.Queue()
    c.start_stream(callback=lambda result, error: results.put((result, error)))
    for value in (1.0, 2.0):
        x = grpcclient.InferInput("x", [1], "FP32")
        x.set_data_from_numpy(np.array([value], np.float32))
        c.async_stream_infer("half_plus_two", [x])
    bad = grpcclient.InferInput("x", [1], "FP64")
    bad.set_data_from_numpy(np.array([1.0]))
    c.async_stream_infer("half_plus_two", [bad])
    got = [results.get(timeout=10) for _ in range(3)]
    c.stop_stream()
    return {
        "values": [r.as_numpy("y").tolist() for r, e in got if e is None],
        "errors": [str(e) for r, e in got if e is not None],
    }


def main() -> None:
    url, scenario = sys.argv[1], sys.argv[2]
    client = grpcclient.InferenceServerClient(url=url)
    try:
        out = {"basics": basics, "repository": repository, "stream": stream}[scenario](client)
    finally:
        client.close()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
