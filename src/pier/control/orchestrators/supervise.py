"""One local replica's life: launch its process, watch it, restart it with backoff, stop it.

The local orchestrator runs `supervise` as one asyncio task per replica. It watches exit
status, readiness (GET /v2/health/ready), a model that failed to load, and log rotation;
it restarts a dead replica with exponential backoff under the same id and port.

A model that fails to load leaves its server up but never ready; the supervisor sees that
in the server's repository index, stops the replica, and lets the backoff apply, with the
load error as the reason. A stopped replica's folder is removed but its log is kept under
``replicas/_logs/`` (see replica_files) so ``logs`` still answers afterwards. Limits and
OOM evidence: see limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import time
from collections.abc import Callable

import httpx
from pydantic import ValidationError

from pier.control.orchestrators import processes
from pier.control.orchestrators.base import ChangeSink, EventSink, ReplicaEvent
from pier.control.orchestrators.limits import (
    Limiter,
    Mode,
    Resources,
    assign_gpus,
    describe_limits,
    detect_gpu_count,
    detect_limiter,
    spread_cpus,
)
from pier.control.orchestrators.replica import (
    HEALTH_FAILURES,
    LOAD_CHECK_SECONDS,
    STABLE_SECONDS,
    Replica,
    backoff_delay,
    is_permanent,
    load_error,
)
from pier.control.orchestrators.replica_files import (
    LOG_NAME,
    ReplicaFile,
    archive_log,
    error_reason,
    rotate_log,
    write_atomic,
)
from pier.control.records import EventKind, ReplicaRecord, ReplicaState
from pier.home import PierHome
from pier.spec import ServiceSpec, to_model_config

logger = logging.getLogger(__name__)


class Supervisor:
    """Launches, watches, restarts and stops the replicas in ``replicas``.

    The orchestrator adds replicas to ``replicas`` and owns the tasks that run
    `supervise` and `stop`; a stopped replica is removed from it here.
    """

    def __init__(
        self,
        home: PierHome,
        *,
        on_event: EventSink,
        on_change: ChangeSink,
        host: str,
        drain_seconds: float,
        grace_seconds: float,
        backoff: tuple[float, float],
        health_interval: float,
        python: str,
        clock: Callable[[], float],
        limits: Mode | None,
        gpu_devices: int | None,
    ) -> None:
        self.home = home
        self.host = host
        self.interval = health_interval
        self.replicas: dict[str, Replica] = {}
        self._on_event = on_event
        self._on_change = on_change
        self._drain = drain_seconds
        self._grace = grace_seconds
        self._backoff = backoff
        self._python = python
        self._clock = clock
        self._prefer: Mode | None = limits
        self._limiter: Limiter | None = None
        detected = detect_gpu_count()
        self._gpus_detected = detected > 0
        # Without GPUs, indices are still handed out (over gpu_devices or one device) so a
        # spec asking for GPUs behaves the same on a laptop; the limits text says so.
        self._gpu_devices = gpu_devices if gpu_devices is not None else max(detected, 1)
        self._client: httpx.AsyncClient | None = None

    @property
    def limiter(self) -> Limiter:
        """How replicas' resources are capped here (detected on first use)."""
        if self._limiter is None:
            self.home.replicas_dir.mkdir(parents=True, exist_ok=True)
            self._limiter = detect_limiter(self.home.root, self._prefer)
        return self._limiter

    def limits_text(self, r: Replica) -> str:
        """The replica's limits as `describe` shows them."""
        res = Resources.from_spec(r.plan.spec)
        return describe_limits(self.limiter.mode, res, r.cpus, r.gpus, self._gpus_detected)

    async def close(self, stop_replicas: bool) -> None:
        """Close the health-check client; with ``stop_replicas`` also release the limiter."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if stop_replicas and self._limiter is not None:
            self._limiter.close()

    # ---- supervision ---------------------------------------------------------------------

    async def supervise(self, r: Replica, spawn: bool) -> None:
        """Keep the replica running: watch it, and restart it with backoff when it ends."""
        try:
            await self._supervise(r, spawn)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # A bug of ours must not leave the replica "starting" forever with no event and
            # its process unwatched: report it, stop (and reap) the process, give up.
            logger.exception("supervising replica %s failed", r.id)
            await self._terminate(r)
            r.pid, r.ticks = None, None
            r.reason = f"supervision failed: {type(exc).__name__}: {exc}"
            self.set_state(r, ReplicaState.FAILED)
            self.emit(r, EventKind.REPLICA_EXITED, r.reason)

    async def _supervise(self, r: Replica, spawn: bool) -> None:
        if spawn:
            first = EventKind.REPLICA_STARTED if r.restarts == 0 else EventKind.REPLICA_RESTARTED
            self._launch(r, first)
        while r.state is not ReplicaState.FAILED:  # FAILED: a spec no restart can fix
            if r.pid is not None:
                await self._watch(r)
            r.failures += 1
            self.set_state(r, ReplicaState.BACKOFF)
            await asyncio.sleep(backoff_delay(r.failures, *self._backoff))
            r.restarts += 1
            self._launch(r, EventKind.REPLICA_RESTARTED)

    def _launch(self, r: Replica, kind: EventKind) -> None:
        """Spawn the replica's process; on failure leave pid None with the reason set."""
        folder = self.home.replicas_dir / r.id
        try:
            config = to_model_config(ServiceSpec.model_validate(r.plan.spec))
        except ValidationError as exc:
            # A spec stored before a bound existed: no process, and say why.
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "spec"
            r.reason = f"invalid spec: {where}: {first['msg']}"
            self.set_state(r, ReplicaState.FAILED)
            self.emit(r, EventKind.REPLICA_EXITED, r.reason)
            return
        res = Resources.from_spec(r.plan.spec)
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / "model-config.json", json.dumps(config).encode())
        if not processes.port_is_free(r.port, self.host):
            r.port = processes.free_port(self.host)
        others = [o for o in self.replicas.values() if o is not r and o.pid is not None]
        if self.limiter.mode == "rlimit" and res.cpu is not None:
            r.cpus = spread_cpus(res.cpu, sorted(os.sched_getaffinity(0)), [o.cpus for o in others])
        r.gpus = assign_gpus(res.gpu, self._gpu_devices, [o.gpus for o in others])
        r.command = [
            self._python, "-m", "pier", "serve",
            "--model", f"{r.plan.service}={r.plan.spec['model']}",
            "--model-config", str(folder / "model-config.json"),
            "--http-host", self.host, "--http-port", str(r.port), "--grpc-port", "0",
            "--cache-dir", str(self.home.cache_dir), "--log-format", "json",
        ]  # fmt: skip
        # `pier serve` reads PIER_* variables as settings: those of `pier up`'s own shell
        # must not change how replicas run (a spec's env may not name PIER_* either).
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("PIER_")}
        env = {**inherited, **(r.plan.spec.get("env") or {}), "PYTHONUNBUFFERED": "1"}
        env["CUDA_VISIBLE_DEVICES"] = ",".join(str(g) for g in r.gpus)
        if self.limiter.mode == "rlimit" and res.memory_mib is not None:
            # glibc reserves 64 MiB of address space per thread arena; under RLIMIT_AS
            # that, not real use, would exhaust the cap on a many-core machine.
            env.setdefault("MALLOC_ARENA_MAX", "2")
        log = folder / LOG_NAME
        rotate_log(log)
        r.oom_base = self.limiter.oom_kills(r.id)
        try:
            r.pid = processes.spawn(r.command, env, log)
        except OSError as exc:
            r.pid, r.reason = None, f"cannot start: {exc}"
            self._count_failure(r)
            self.emit(r, EventKind.REPLICA_EXITED, r.reason)
            return
        r.limits = self.limits_text(r)
        try:
            self.limiter.apply(r.pid, r.id, res, r.cpus)
        except (OSError, ValueError, OverflowError) as exc:
            r.limits = f"not enforced ({exc})"
            logger.warning("replica %s: limits not applied: %s", r.id, exc)
        r.ticks, r.child = processes.start_ticks(r.pid), True
        r.started_at, r.ready_since, r.health_failures = time.time(), None, 0
        r.exit_code = None
        self._save(r)
        self.set_state(r, ReplicaState.STARTING)
        self.emit(r, kind, f"pid {r.pid} on port {r.port}; limits: {r.limits}")

    async def _watch(self, r: Replica) -> None:
        """Poll until the process ends, tracking readiness; then record how it ended."""
        assert r.pid is not None
        next_load_check = self._clock()
        next_rotate = self._clock() + 5.0
        while True:
            ended = processes.poll_exit(r.pid, r.ticks, r.child)
            if ended is not None:
                self._record_exit(r, ended)
                return
            await self._check_health(r)
            now = self._clock()
            if r.state is ReplicaState.STARTING and now >= next_load_check:
                next_load_check = now + LOAD_CHECK_SECONDS
                failed = await self._load_failure(r)
                if failed:
                    # The server stays up with a model that will never load: stop it so
                    # the restart and backoff apply, and keep the load error as the reason.
                    ended = await self._terminate(r) or processes.Exit(None)
                    self._record_exit(r, ended, f"model failed to load: {failed}")
                    return
            if now >= next_rotate:
                next_rotate = now + 5.0
                rotate_log(self.home.replicas_dir / r.id / LOG_NAME)
            await asyncio.sleep(self.interval)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=max(1.0, self.interval * 4), trust_env=False)
        return self._client

    async def _check_health(self, r: Replica) -> None:
        try:
            resp = await self._http().get(f"http://{self.host}:{r.port}/v2/health/ready")
            ready = resp.status_code == 200
        except httpx.HTTPError:
            ready = False
        now = self._clock()
        if ready:
            r.health_failures = 0
            if r.state is not ReplicaState.READY:
                r.ready_since, r.ever_ready = now, True
                r.last_failure, r.repeats = "", 0
                self.set_state(r, ReplicaState.READY)
                self.emit(r, EventKind.REPLICA_READY, f"ready on {self.host}:{r.port}")
            elif r.ready_since is not None and now - r.ready_since >= STABLE_SECONDS:
                r.failures = 0
        elif r.state is ReplicaState.READY:
            r.health_failures += 1
            if r.health_failures >= HEALTH_FAILURES:
                r.ready_since = None
                r.reason = f"health check failed {r.health_failures} times in a row"
                self.set_state(r, ReplicaState.STARTING)

    async def _load_failure(self, r: Replica) -> str:
        """The load error when every version of the replica's model failed to load; else ""."""
        url = f"http://{self.host}:{r.port}/v2/repository/index"
        try:
            resp = await self._http().post(url, json={})
            entries = resp.json() if resp.status_code == 200 else []
        except (httpx.HTTPError, ValueError):
            return ""
        return load_error(entries, r.plan.service)

    def _record_exit(self, r: Replica, ended: processes.Exit, reason: str = "") -> None:
        """Report how the process ended (OOM when the evidence says so) and forget its pid."""
        res = Resources.from_spec(r.plan.spec)
        log_error = error_reason(self.home.replicas_dir / r.id / LOG_NAME)
        oom = self.limiter.oom_kills(r.id) > r.oom_base
        if not oom and self.limiter.mode == "rlimit" and res.memory_mib is not None:
            # Under RLIMIT_AS the kernel does not kill: allocation fails with MemoryError.
            oom = "MemoryError" in (log_error + reason)
        r.pid, r.ticks, r.exit_code, r.ready_since = None, None, ended.code, None
        if oom:
            cap = f"limit {res.memory_mib} MiB" if res.memory_mib is not None else "no limit set"
            verb = "killed" if self.limiter.mode != "rlimit" else "failed"
            r.reason = f"{verb}: out of memory ({cap})"
            kind = EventKind.REPLICA_OOM_KILLED
        else:
            # A reason of ours (we stopped it) says more than the exit status it led to.
            r.reason = reason or ended.describe() + (f": {log_error}" if log_error else "")
            kind = EventKind.REPLICA_EXITED
        self._count_failure(r)
        self.emit(r, kind, r.reason)
        self._on_change()

    @staticmethod
    def _count_failure(r: Replica) -> None:
        """Track how many exits in a row had this same reason (see is_permanent)."""
        r.repeats = r.repeats + 1 if r.reason == r.last_failure else 1
        r.last_failure = r.reason

    async def _terminate(self, r: Replica) -> processes.Exit | None:
        """SIGTERM, wait up to grace_seconds, then SIGKILL the whole session; how it ended."""
        if r.pid is None:
            return None
        pid, ticks, child = r.pid, r.ticks, r.child
        processes.send(pid, signal.SIGTERM)
        deadline = self._clock() + self._grace
        while self._clock() < deadline:
            ended = processes.poll_exit(pid, ticks, child)
            if ended is not None:
                return ended
            await asyncio.sleep(0.05)
        processes.send(pid, signal.SIGKILL, group=True)
        for _ in range(100):
            ended = processes.poll_exit(pid, ticks, child)
            if ended is not None:
                return ended
            await asyncio.sleep(0.05)
        return processes.Exit(None)

    async def stop(self, r: Replica) -> None:
        """Drain (out of routing first), stop the process, remove the folder, keep the log."""
        if r.task is not None and r.task is not asyncio.current_task():
            r.task.cancel()
            # A task that died of an error (logged where it ended) must not stop this stop:
            # the process still has to be terminated and reaped.
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await r.task
        if r.pid is not None and r.state is ReplicaState.READY:
            self.set_state(r, ReplicaState.DRAINING)
            await asyncio.sleep(self._drain)
        else:
            self.set_state(r, ReplicaState.DRAINING)
        ended = await self._terminate(r)
        message = ended.describe() if ended is not None else "was not running"
        r.exit_code = ended.code if ended is not None else r.exit_code
        r.pid = None
        self.emit(r, EventKind.REPLICA_STOPPED, f"stopped: {message}")
        self.limiter.remove(r.id)
        folder = self.home.replicas_dir / r.id
        archive_log(folder, self.home.replicas_dir, r.plan.service)
        shutil.rmtree(folder, ignore_errors=True)
        self.replicas.pop(r.id, None)
        r.state = ReplicaState.STOPPED
        self._on_change()

    # ---- bookkeeping -----------------------------------------------------------------------

    def set_state(self, r: Replica, state: ReplicaState) -> None:
        """Move the replica to ``state``, telling the change sink when it is new."""
        r.updated_at = time.time()
        if r.state is not state:
            r.state = state
            self._on_change()

    def emit(self, r: Replica, kind: EventKind, message: str) -> None:
        """Report an event in the replica's life to the event sink."""
        r.updated_at = time.time()
        self._on_event(ReplicaEvent(r.plan.service, r.plan.revision, r.id, kind, message))

    def _save(self, r: Replica) -> None:
        ReplicaFile(
            id=r.id, service=r.plan.service, revision=r.plan.revision, port=r.port,
            pid=r.pid, start_ticks=r.ticks, command=r.command, spec=r.plan.spec,
            restarts=r.restarts, started_at=r.started_at, gpus=list(r.gpus), cpus=list(r.cpus),
        ).save(self.home.replicas_dir / r.id)  # fmt: skip

    def record(self, r: Replica) -> ReplicaRecord:
        """The replica as `observe` reports it."""
        return ReplicaRecord(
            id=r.id,
            service=r.plan.service,
            revision=r.plan.revision,
            state=r.state,
            address=f"{self.host}:{r.port}",
            pid=r.pid,
            restarts=r.restarts,
            exit_code=r.exit_code,
            reason=r.reason,
            limits=r.limits,
            started_at=r.started_at,
            updated_at=r.updated_at,
            extra={
                "adopted": not r.child,
                "gpus": list(r.gpus),
                "cpus": list(r.cpus),
                "permanent": is_permanent(r.ever_ready, r.repeats),
            },
        )
