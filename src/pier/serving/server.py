"""Composes one model server: repository, data plane, REST app, lifespan and workers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pier.config import ServerSettings
from pier.errors import NotFound, PierError
from pier.observe.logs import AccessLog, setup_logging
from pier.observe.metrics import MULTIPROC_ENV, Metrics
from pier.serving.dataplane import DataPlane
from pier.serving.protocols.http import Receive, Scope, Send
from pier.serving.protocols.rest import RestApp
from pier.serving.repository import ModelRepository
from pier.serving.single_model_source import SingleModelSource, parse_model_option, read_override
from pier.serving.sources import LocalSource, RepositorySource, open_source
from pier.serving.status import ServerState
from pier.sockets import listen
from pier.storage import StorageOptions

log = logging.getLogger(__name__)


class ModelServer:
    """An ASGI application owning the models of one server process.

    ``storage`` says how to reach a remote repository; the entry point (``serve``) builds
    it once from the environment.
    """

    def __init__(self, settings: ServerSettings, storage: StorageOptions) -> None:
        self.settings = settings
        self.storage = storage
        threads = settings.executor_threads or (os.cpu_count() or 1) + 2
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="pier-model")
        self.metrics = Metrics(multiprocess=bool(os.environ.get(MULTIPROC_ENV)))
        self.state = ServerState(strict_readiness=settings.strict_readiness)
        self.access_log = AccessLog() if settings.access_log else None
        self.repository: ModelRepository | None = None
        self.rest: RestApp | None = None
        self.grpc: Any = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        """Create the repository and start loading; health answers while models load."""
        s = self.settings
        self.repository = ModelRepository(
            source_of(s, self.storage),
            self.executor,
            self.metrics,
            control_mode=s.model_control_mode,
            load_models=s.load_models,
        )
        plane = DataPlane(self.repository, self.metrics, self.state, s.max_elements)
        self.rest = RestApp(plane, s.max_request_size, self.access_log)
        if s.grpc_port:
            # grpc is imported only when gRPC is on; `import pier` stays light.
            from pier.serving.protocols.grpc.server import GrpcServer

            self.grpc = GrpcServer(
                plane,
                s.http_host,
                s.grpc_port,
                s.grpc_max_message_size,
                reuse_port=s.workers > 1,
            )
            await self.grpc.start()
        loop = asyncio.get_running_loop()
        if s.workers > 1:
            # Workers share one listening socket and the kernel hands each connection to
            # any of them: a worker accepts only once its models are loaded, so no client
            # meets a worker that is still loading while another one said "ready".
            await self._initial_load()
        self._tasks.append(loop.create_task(self._load_then_poll(), name="pier-repository"))
        self._tasks.append(loop.create_task(self._housekeeping(), name="pier-housekeeping"))

    async def _housekeeping(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            # Requests count into cheap in-process children; this moves the totals into
            # prometheus_client (and, with several workers, into the shared files).
            self.metrics.flush()
            await self._refresh_health()

    async def _initial_load(self) -> None:
        assert self.repository is not None
        try:
            await self.repository.scan()
        except Exception:
            log.exception("initial scan of the model repository failed")
        self.state.started = True
        await self._refresh_health()
        log.info(
            "server is ready: %d model(s) in %s",
            len(self.repository.model_names()),
            self.repository.source.description,
        )

    async def _load_then_poll(self) -> None:
        assert self.repository is not None
        if not self.state.started:
            await self._initial_load()  # one worker: health answers while models load
        if self.settings.model_control_mode != "poll":
            return
        while True:
            await asyncio.sleep(self.settings.poll_interval)
            try:
                await self.repository.scan()
            except Exception:
                log.exception("repository scan failed; will retry")

    async def _refresh_health(self) -> None:
        if self.grpc is not None:
            await self.grpc.refresh_health()

    async def stop(self) -> None:
        """Stop polling, let queued work finish, unload every model."""
        self.state.draining = True
        if self.grpc is not None:
            await self.grpc.stop(self.settings.graceful_timeout)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self.repository is not None:
            await self.repository.close()
        self.metrics.flush()
        self.executor.shutdown(wait=True, cancel_futures=True)
        if self.access_log is not None:
            self.access_log.flush()
        log.info("server stopped")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            if self.rest is None:
                await _not_started(send)
                return
            await self.rest(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.start()
                except Exception as exc:
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.stop()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _not_started(send: Send) -> None:
    body = b'{"error":"server is starting"}'
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _make_server_class() -> type[Any]:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, but SIGTERM/SIGINT end it with exit status 0 once drained.

        uvicorn re-raises the captured signal after shutdown, which makes the process
        die "killed by SIGTERM" even when every request finished cleanly.
        """

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            signals = (signal.SIGINT, signal.SIGTERM)
            previous = {sig: signal.signal(sig, self.handle_exit) for sig in signals}
            try:
                yield
            finally:
                for sig, handler in previous.items():
                    signal.signal(sig, handler)

    return Server


def _run_uvicorn(settings: ServerSettings, storage: StorageOptions, sock: socket.socket) -> None:
    import uvicorn

    from pier.serving.protocols.head_limits import BoundedHttpToolsProtocol

    _Server = _make_server_class()
    app = ModelServer(settings, storage)
    config = uvicorn.Config(
        app,
        http=BoundedHttpToolsProtocol,  # httptools, with the request head bounded
        loop="uvloop" if sys.platform != "win32" else "asyncio",
        lifespan="on",
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=int(settings.graceful_timeout) or None,
        backlog=2048,
        timeout_keep_alive=75,
    )
    _Server(config).run(sockets=[sock])


def _worker_main(settings: ServerSettings, storage: StorageOptions, sock: socket.socket) -> None:
    setup_logging(settings.log_level, settings.log_format)
    _run_uvicorn(settings, storage, sock)


def check_repository(settings: ServerSettings, storage: StorageOptions) -> str:
    """Fail fast on a repository that cannot be read; return its description (no secrets)."""
    source = source_of(settings, storage)
    if isinstance(source, LocalSource):
        if not source.root.is_dir():
            raise NotFound(f"{source.description} is not a folder")
    elif isinstance(source, SingleModelSource):
        source.check()
    else:
        source.model_names()  # one listing: says not found, access denied or unreachable now
    return source.description


def source_of(settings: ServerSettings, storage: StorageOptions) -> RepositorySource:
    """Where the settings say the models are: a repository, or one model given as NAME=URI."""
    s = settings
    if not s.model:
        return open_source(s.model_repository, s.cache_dir, s.cache_size, storage)
    name, location = parse_model_option(s.model)
    override = read_override(s.model_config_file)
    return SingleModelSource(name, location, s.cache_dir, s.cache_size, storage, override)


def serve(settings: ServerSettings) -> int:
    """Run ``pier serve`` until SIGTERM or SIGINT; return the exit code.

    The entry point of the serving plane: the storage options (credentials, endpoint)
    are read from the environment here, once, and passed down.
    """
    setup_logging(settings.log_level, settings.log_format)
    try:
        storage = StorageOptions.from_env()
        where = check_repository(settings, storage)
    except PierError as exc:
        log.error("model repository: %s", exc.message)
        return 2
    try:
        sock = listen(settings.http_host, settings.http_port, inheritable=True)
    except OSError as exc:
        log.error("cannot listen on %s:%d: %s", settings.http_host, settings.http_port, exc)
        return 2
    host, port = sock.getsockname()[:2]
    log.info(
        "pier serve: HTTP (TF Serving REST and Open Inference Protocol REST) on http://%s:%d, "
        "%d worker(s), repository %s",
        host,
        port,
        settings.workers,
        where,
    )
    if settings.workers == 1:
        _run_uvicorn(settings, storage, sock)
        return 0
    return _supervise(settings, storage, sock)


def _supervise(settings: ServerSettings, storage: StorageOptions, sock: socket.socket) -> int:
    """Run N worker processes on one listening socket; restart any that die."""
    with tempfile.TemporaryDirectory(prefix="pier-metrics-") as metrics_dir:
        os.environ[MULTIPROC_ENV] = metrics_dir  # read by prometheus_client in the workers
        ctx = multiprocessing.get_context("spawn")
        workers: list[Any] = []
        stopping = False

        def start_one() -> Any:
            proc = ctx.Process(
                target=_worker_main, args=(settings, storage, sock), name="pier-worker"
            )
            proc.start()
            return proc

        def stop(signum: int, _frame: Any) -> None:
            nonlocal stopping
            stopping = True
            for proc in workers:
                if proc.is_alive() and proc.pid is not None:
                    os.kill(proc.pid, signal.SIGTERM)

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        workers.extend(start_one() for _ in range(settings.workers))
        while not stopping:
            time.sleep(0.5)
            for i, proc in enumerate(workers):
                if not proc.is_alive() and not stopping:
                    log.warning(
                        "worker pid %s exited with %s; starting another", proc.pid, proc.exitcode
                    )
                    workers[i] = start_one()
        deadline = time.monotonic() + settings.graceful_timeout + 5
        for proc in workers:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()
        os.environ.pop(MULTIPROC_ENV, None)
    return 0
