"""Per-request cost of Pier's ASGI app alone, called in-process with no HTTP or sockets.

A diagnostic for target (a): wrk measures the whole path, and this shows how much of it
is the app's own Python (routing, decoding, model call, encoding, metrics). It calls the
app the way uvicorn does, with a receive() that yields the body and a send() that
drops the response, and compares it with the hello-world app and the bare ONNX app
(bare_onnx_app.py) called the same way.

    .venv/bin/python bench/app_cost.py [--requests 20000]
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import bare_onnx_app
import hello_app
from bench_rest import MODEL, TF_REST, V2_REST
from harness import Request


def _scope(request: Request) -> dict[str, Any]:
    path, _, query = request.path.partition("?")
    headers = [(k.lower().encode(), v.encode()) for k, v in request.headers.items()]
    headers.append((b"content-length", str(len(request.body)).encode()))
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": request.method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }


async def _per_request_us(app: Any, request: Request, n: int) -> tuple[float, int]:
    scope = _scope(request)
    message = {"type": "http.request", "body": request.body, "more_body": False}
    status = 0

    async def receive() -> dict[str, Any]:
        return message

    async def send(msg: dict[str, Any]) -> None:
        nonlocal status
        if msg["type"] == "http.response.start":
            status = msg["status"]

    for _ in range(min(n, 1000)):  # warm-up
        await app(dict(scope), receive, send)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        for _ in range(n):
            await app(dict(scope), receive, send)
        best = min(best, (time.perf_counter() - t0) / n * 1e6)
    return best, status


async def _main(n: int) -> None:
    from pier.config import ServerSettings
    from pier.serving.demo import write_demo_repository
    from pier.serving.server import ModelServer
    from pier.storage import StorageOptions

    with tempfile.TemporaryDirectory(prefix="pier-app-cost-") as tmp:
        demo, repo = Path(tmp) / "demo", Path(tmp) / "models"
        write_demo_repository(demo)
        repo.mkdir()
        shutil.copytree(demo / MODEL, repo / MODEL)
        # gRPC off: this measures the REST app, and needs no port of its own.
        settings = ServerSettings.model_validate(
            {
                "model_repository": str(repo),
                "access_log": False,
                "log_level": "warning",
                "grpc_port": 0,
            }
        )
        app = ModelServer(settings, StorageOptions())  # a local repository
        await app.start()
        while not app.state.started:
            await asyncio.sleep(0.05)
        bare = bare_onnx_app.make_app(str(repo / MODEL / "1" / "model.onnx"))
        cases = [
            ("hello-world app", hello_app.app, TF_REST),
            ("bare onnx app V2 JSON infer", bare, V2_REST),
            ("pier GET /v2/health/live", app, Request("GET", "/v2/health/live")),
            ("pier TF REST predict", app, TF_REST),
            ("pier V2 JSON infer", app, V2_REST),
        ]
        print(f"{n} calls per case, best of 3, in-process (no HTTP):")
        for name, target, request in cases:
            us, status = await _per_request_us(target, request, n)
            print(f"  {name:<28} {us:7.1f} us/request  (status {status})")
        await app.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.run(_main(args.requests))
    except ImportError:
        asyncio.run(_main(args.requests))


if __name__ == "__main__":
    main()
