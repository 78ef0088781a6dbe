"""Run a gateway alone, with fixed routes: ``python -m pier.gateway --route NAME=HOST:PORT,...``.

For benchmarks and trying the gateway out; ``pier up`` builds its routes from the
control plane instead. Settings come from ``PIER_GATEWAY_*`` variables, as for ``pier up``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys

from pier.gateway.routes import Replica
from pier.gateway.server import Gateway
from pier.gateway.settings import GatewaySettings
from pier.gateway.thread import new_event_loop


def parse_route(text: str) -> tuple[str, list[Replica]]:
    """``NAME=HOST:PORT[,HOST:PORT...]`` -> (service, replicas with ids NAME-0, NAME-1, ...)."""
    name, sep, addresses = text.partition("=")
    if not sep or not name or not addresses:
        raise argparse.ArgumentTypeError(f"expected NAME=HOST:PORT[,HOST:PORT], got {text!r}")
    replicas = []
    for i, address in enumerate(addresses.split(",")):
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {address!r}")
        replicas.append(Replica(f"{name}-{i}", 1, host, int(port)))
    return name, replicas


async def serve(
    settings: GatewaySettings, host: str, port: int, routes: list[tuple[str, list[Replica]]]
) -> None:
    gateway = Gateway(settings)
    for name, replicas in routes:
        gateway.set_routes(name, replicas)
    await gateway.start(host, port)
    print(f"gateway listening on http://{host}:{gateway.port}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await gateway.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pier.gateway", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--route", type=parse_route, action="append", default=[])
    args = parser.parse_args(argv)
    try:
        settings = GatewaySettings.from_env(os.environ)
    except ValueError as exc:
        parser.error(str(exc))
    loop = new_event_loop()
    try:
        loop.run_until_complete(serve(settings, args.host, args.port, args.route))
    finally:
        loop.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
