"""The gRPC ceiling: a grpc.aio server that answers any unary call with a constant message.

Same grpcio and the same uvloop event loop as `pier serve`, one process, no services,
no reflection, no health: what a Python gRPC server on this stack does when it does no
work at all. The request bytes are received but never parsed; the reply is the
serialized ModelInferResponse that Pier sends for half_plus_two (y = [2.5]), so the
response is as large as the real one.

    python bench/hello_grpc.py --port 8500
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

import grpc
import uvloop

# inference.ModelInferResponse(model_name="half_plus_two", model_version="1",
#   outputs=[{name: "y", datatype: "FP32", shape: [1]}], raw_output_contents=[<2.5 as <f4>])
RESPONSE = b"\n\rhalf_plus_two\x12\x011*\x0c\n\x01y\x12\x04FP32\x1a\x01\x012\x04\x00\x00 @"


async def _answer(request: bytes, context: Any) -> bytes:
    return RESPONSE


# No deserializer or serializer: the handler gets and returns raw bytes.
_HANDLER = grpc.unary_unary_rpc_method_handler(_answer)


class AnyMethod(grpc.GenericRpcHandler):
    """Serves every method name with the same unary handler."""

    def service(self, handler_call_details: Any) -> Any:
        return _HANDLER


async def serve(host: str, port: int) -> None:
    server = grpc.aio.server(handlers=[AnyMethod()])
    if not server.add_insecure_port(f"{host}:{port}"):
        raise SystemExit(f"cannot listen on {host}:{port}")
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8500)
    args = parser.parse_args()
    uvloop.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
