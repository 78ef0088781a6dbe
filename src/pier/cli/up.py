"""``pier up``: the control plane, the gateway and the management API in one process.

This is where the planes meet (they never import each other): the store feeds the
controller, the controller drives the local orchestrator and publishes ready replicas to
the gateway, and the API writes to the store and wakes the controller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pier.control.controller import Controller
from pier.control.orchestrators.base import ReplicaEvent
from pier.control.records import ReplicaRecord
from pier.errors import PierError
from pier.home import PierHome, default_home
from pier.sockets import listen

if TYPE_CHECKING:  # the gateway is imported when `pier up` runs, not for `pier --help`
    from pier.control.reconciler import Desired
    from pier.gateway import Gateway, GatewaySettings

log = logging.getLogger("pier.up")


@dataclass
class UpSettings:
    """How ``pier up`` runs; built from the command line."""

    home: Path
    host: str = "127.0.0.1"
    port: int = 8080
    api_host: str = "127.0.0.1"
    api_port: int = 8090
    store_url: str = ""  # empty: SQLite in the home folder
    leave_running: bool = False  # on exit, leave replicas running for the next `pier up`
    deploy: list[Path] = field(default_factory=list)
    interval: float = 1.0
    gateway: GatewaySettings | None = None  # None: the gateway's defaults


class _Sinks:
    """Breaks the orchestrator ⇄ controller cycle: built first, pointed at the controller later."""

    controller: Controller | None = None

    def event(self, e: ReplicaEvent) -> None:
        if self.controller is not None:
            self.controller.on_event(e)

    def change(self) -> None:
        if self.controller is not None:
            self.controller.on_change()


class _GatewayRoutes:
    """Turns the controller's ready replicas into the gateway's routing table."""

    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def set_routes(self, service: str, replicas: list[ReplicaRecord], desired: Desired) -> None:
        from pier.gateway import Replica

        routed = []
        for r in replicas:
            host, _, port = r.address.rpartition(":")
            if host and port.isdigit():
                routed.append(Replica(r.id, r.revision, host, int(port)))
        self.gateway.set_routes(service, routed, wanted=desired.replicas, stopped=desired.stopped)

    def remove_routes(self, service: str) -> None:
        self.gateway.remove_routes(service)


def _url(host: str, port: int) -> str:
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    return f"http://{shown}:{port}"


async def run_up(settings: UpSettings) -> int:
    """Run until SIGINT or SIGTERM; return the exit code."""
    import uvicorn
    from filelock import FileLock, Timeout

    from pier.control.api import create_api
    from pier.control.orchestrators.local import LocalOrchestrator
    from pier.control.store import Store
    from pier.gateway import Gateway, run_in_thread
    from pier.serving.precheck import spec_problems

    home = PierHome(settings.home)
    home.ensure()
    lock = FileLock(str(home.lock_path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        log.error("another `pier up` is running with the home folder %s", home.root)
        return 1
    try:
        token, new = home.ensure_token()
        store = Store(settings.store_url or home.db_url)
        sinks = _Sinks()
        orchestrator = LocalOrchestrator(home, on_event=sinks.event, on_change=sinks.change)
        gateway = Gateway(settings.gateway)
        controller = Controller(
            store, orchestrator, _GatewayRoutes(gateway), interval=settings.interval
        )
        sinks.controller = controller

        # The gateway gets a thread and event loop of its own: it is on every request's
        # path, and nothing the control plane does should queue in front of it.
        try:
            gateway_thread = run_in_thread(gateway, settings.host, settings.port)
        except OSError as exc:
            log.error("the gateway cannot listen on %s:%d: %s", settings.host, settings.port, exc)
            return 1
        gateway_url = _url(settings.host, gateway_thread.port)
        app = create_api(
            store, controller, token, gateway_url=gateway_url, check_model=spec_problems
        )
        config = uvicorn.Config(
            app,
            host=settings.api_host,
            port=settings.api_port,
            log_config=None,
            access_log=False,
            lifespan="off",
            loop="none",
        )
        api = uvicorn.Server(config)
        # `pier up` owns SIGINT/SIGTERM (below); uvicorn must not take them over.
        api.capture_signals = contextlib.nullcontext  # type: ignore[method-assign,assignment]
        # Bound here rather than by uvicorn, so that a busy port is a clear error, not an exit.
        try:
            api_socket = listen(settings.api_host, settings.api_port)
        except OSError as exc:
            log.error(
                "the management API cannot listen on %s:%d: %s",
                settings.api_host,
                settings.api_port,
                exc.strerror,
            )
            await asyncio.to_thread(gateway_thread.stop)
            return 1
        await orchestrator.start()
        api_task = asyncio.create_task(api.serve(sockets=[api_socket]), name="pier-api")
        while not api.started and not api_task.done():
            await asyncio.sleep(0.02)
        api_port = api_socket.getsockname()[1]
        api_url = _url(settings.api_host, api_port)
        home.write_address(api_url, gateway_url)
        control_task = asyncio.create_task(controller.run(), name="pier-controller")

        print(f"Pier is up (home {home.root})", flush=True)
        print(f"  gateway         {gateway_url}   (TF Serving and V2 REST, by service name)")
        print(f"  management API  {api_url}/api/v1   (docs: {api_url}/api/v1/docs)")
        if new:
            print(f"  admin token     {token}")
            print(f"                  shown once; kept in {home.token_path} (owner-only)")
        sys.stdout.flush()
        deploy_task = None
        if settings.deploy:
            deploy_task = asyncio.create_task(
                _deploy(settings.deploy, api_url, token), name="pier-deploy"
            )

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()

        log.info("shutting down")
        if deploy_task is not None:
            deploy_task.cancel()
        control_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await control_task
        api.should_exit = True
        await orchestrator.close(stop_replicas=not settings.leave_running)
        await asyncio.to_thread(gateway_thread.stop)
        with contextlib.suppress(PierError):
            await controller.flush_events()  # the replicas' stop events
        with contextlib.suppress(asyncio.CancelledError):
            await api_task
        store.close()
        home.clear_address()
        return 0
    except PierError as exc:
        log.error("%s", exc.message)
        return 1
    finally:
        lock.release()


async def _deploy(files: list[Path], api_url: str, token: str) -> None:
    """Create (or update) the services in ``files`` through the management API."""
    from pier.client import PierAPIError, PierClient
    from pier.spec import load_spec_bytes, resolve_local_paths

    def go() -> None:
        client = PierClient(api_url, token)
        try:
            for path in files:
                parsed = load_spec_bytes(path.read_bytes(), path.name)
                spec = resolve_local_paths(parsed.spec, path.resolve().parent)
                body = spec.model_dump(mode="json")
                try:
                    client.create(body)
                    done = "deployed"
                except PierAPIError as exc:
                    if exc.code != "already_exists":
                        raise
                    changed = client.update(spec.name, body)["changed"]
                    done = "updated" if changed else "unchanged"
                print(f"  {done:15} {spec.name} from {path}", flush=True)
        finally:
            client.close()

    try:
        await asyncio.to_thread(go)
    except (PierError, OSError) as exc:
        log.error("deploying %s failed: %s", ", ".join(map(str, files)), exc)


@click.command("up")
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="PIER_HOME",
    default=None,
    help="Pier's folder: store, admin token, replica logs [default: ~/.pier; env PIER_HOME].",
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Gateway address.")
@click.option("--port", default=8080, show_default=True, type=int, help="Gateway port.")
@click.option("--api-host", default="127.0.0.1", show_default=True, help="API address.")
@click.option("--api-port", default=8090, show_default=True, type=int, help="API port.")
@click.option(
    "--store",
    "store_url",
    default="",
    envvar="PIER_STORE",
    help="postgresql://user:pass@host/db to keep state in PostgreSQL "
    "[default: SQLite in the home folder; env PIER_STORE].",
)
@click.option(
    "--leave-running/--stop-replicas",
    default=False,
    show_default=True,
    help="On exit, leave replicas serving for the next `pier up` to adopt.",
)
@click.option(
    "--deploy",
    multiple=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="A service spec to create (or update) once up. Repeatable.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
def up_command(
    home: Path | None,
    host: str,
    port: int,
    api_host: str,
    api_port: int,
    store_url: str,
    leave_running: bool,
    deploy: tuple[Path, ...],
    log_level: str,
) -> None:
    """Run the platform on this machine: gateway, management API and replicas.

    The gateway's limits, timeouts and failure handling are set with PIER_GATEWAY_*
    variables (PIER_GATEWAY_MAX_BODY, PIER_GATEWAY_REQUEST_TIMEOUT, ...).
    """
    from pier.gateway import GatewaySettings
    from pier.observe.logs import setup_logging

    try:
        gateway = GatewaySettings.from_env(os.environ)
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None

    setup_logging(log_level, "auto")
    # One line per health probe (several a second per replica) is noise, not news.
    # uvicorn's own start lines (and its "Press CTRL+C") would contradict the banner below.
    for noisy in ("httpx", "httpcore", "uvicorn.error"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
    settings = UpSettings(
        home=home or default_home(),
        host=host,
        port=port,
        api_host=api_host,
        api_port=api_port,
        store_url=store_url,
        leave_running=leave_running,
        deploy=list(deploy),
        gateway=gateway,
    )
    try:
        import uvloop
    except ImportError:  # Windows
        sys.exit(asyncio.run(run_up(settings)))
    sys.exit(uvloop.run(run_up(settings)))
