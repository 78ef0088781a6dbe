"""A second reference for target (a): the least a server must do to answer a V2 JSON infer.

A bare ASGI app on the same stack as hello_app.py that parses the V2 JSON body with
orjson, turns ``data`` into numpy, calls the ONNX Runtime session, and encodes the reply.
It has no routing, validation, metrics or errors. The gap between it and hello_app is the
cost of the model call and JSON. The gap between it and Pier is Pier's own overhead.

    python bench/bare_onnx_app.py --model MODELS/half_plus_two/1/model.onnx --port 8000 [--workers 2]
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import hello_app

MODEL_ENV = "PIER_BENCH_ONNX_MODEL"  # how worker processes learn the model file

# By dtype.char: str(dtype) and dtype.name run Python code in numpy 2 and cost ~18 us per
# request under load on the 2-core machine, which halved this app's throughput.
_NAMES = {"f": "FP32", "d": "FP64", "l": "INT64", "q": "INT64", "i": "INT32"}


def make_app(model: str) -> Any:
    import numpy as np
    import onnxruntime as ort
    import orjson

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    output = session.get_outputs()[0].name
    headers = [(b"content-type", b"application/json")]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await hello_app.app(scope, receive, send)  # health checks, lifespan
            return
        message = await receive()
        body = message["body"]
        while message.get("more_body"):
            message = await receive()
            body += message["body"]
        tensor = orjson.loads(body)["inputs"][0]
        x = np.asarray(tensor["data"], dtype=np.float32).reshape(tensor["shape"])
        [y] = session.run([output], {tensor["name"]: x})
        reply = orjson.dumps(
            {
                "model_name": "model",
                "outputs": [
                    {
                        "name": output,
                        "datatype": _NAMES.get(y.dtype.char, "FP32"),
                        "shape": list(y.shape),
                        "data": y.ravel().tolist(),
                    }
                ],
            }
        )
        length = (b"content-length", b"%d" % len(reply))
        await send({"type": "http.response.start", "status": 200, "headers": [*headers, length]})
        await send({"type": "http.response.body", "body": reply})

    return app


def app_from_env() -> Any:
    """The app for the model named in the environment (uvicorn's worker processes)."""
    return make_app(os.environ[MODEL_ENV])


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="an .onnx file with one input")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1, help="server processes on the port")
    args = parser.parse_args()
    options: dict[str, Any] = {
        "host": args.host,
        "port": args.port,
        "http": "httptools",
        "loop": "uvloop",
        "access_log": False,
        "log_level": "warning",
    }
    if args.workers > 1:
        # Worker processes build the app themselves, from a factory named by import path.
        os.environ[MODEL_ENV] = args.model
        uvicorn.run("bare_onnx_app:app_from_env", factory=True, workers=args.workers, **options)
    else:
        uvicorn.run(make_app(args.model), **options)


if __name__ == "__main__":
    main()
