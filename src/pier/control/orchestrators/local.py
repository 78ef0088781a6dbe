"""The local orchestrator: each replica is a `pier serve` process on this machine, supervised.

A replica serves one model, named after its service, on its own port on 127.0.0.1. One
asyncio task per replica watches it: exit status, readiness (GET /v2/health/ready), a
model that failed to load, log rotation; it restarts a dead replica with exponential
backoff under the same id and port. Replicas run in their own session and survive the
control plane; a new one re-adopts them from ``replicas/<id>/replica.json``.

A model that fails to load leaves its server up but never ready; the orchestrator sees
that in the server's repository index, stops the replica, and lets the backoff apply,
with the load error as the reason. A stopped replica's folder is removed but its log is
kept under ``replicas/_logs/`` (see replica_files) so ``logs`` still answers afterwards.
Limits and OOM evidence: see limits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import shutil
import signal
import string
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import ValidationError

from pier.control.home import PierHome
from pier.control.orchestrators import processes
from pier.control.orchestrators.base import ChangeSink, EventSink, ReplicaEvent, RevisionPlan
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
from pier.control.orchestrators.replica_files import (
    LOG_NAME,
    ReplicaFile,
    archive_log,
    archived_logs,
    error_reason,
    live_logs,
    read_logs,
    rotate_log,
    write_atomic,
)
from pier.control.records import EventKind, ReplicaRecord, ReplicaState
from pier.spec import ServiceSpec, to_model_config

logger = logging.getLogger(__name__)

#: a replica ready this long has its backoff reset
STABLE_SECONDS = 30.0
#: failed health checks in a row before a ready replica counts as not ready
HEALTH_FAILURES = 3
#: seconds between looks at a starting replica's model load state
LOAD_CHECK_SECONDS = 1.0
_ID_CHARS = string.ascii_lowercase + string.digits


def backoff_delay(failures: int, initial: float, maximum: float) -> float:
    """Seconds to wait before restart number ``failures`` in a row (1, 2, …): doubling, capped."""
    return float(min(maximum, initial * 2.0 ** max(0, failures - 1)))


def pick_victims(replicas: Sequence[tuple[str, bool, float]], count: int) -> list[str]:
    """Which replicas to stop when scaling down: not ready first, then the youngest.

    ``replicas`` holds (id, ready, started_at) tuples.
    """
    ordered = sorted(replicas, key=lambda r: (r[1], -r[2], r[0]))
    return [rid for rid, _, _ in ordered[: max(0, count)]]


@dataclass
class _Replica:
    """One replica as the orchestrator tracks it (mutable; observe() copies it out)."""

    id: str
    plan: RevisionPlan
    port: int
    state: ReplicaState = ReplicaState.STARTING
    pid: int | None = None
    ticks: int | None = None  # /proc start time: tells our process from a reused pid
    child: bool = True  # we spawned it (waitpid works) rather than adopted it
    restarts: int = 0
    failures: int = 0  # exits in a row, for the backoff
    exit_code: int | None = None
    reason: str = ""
    limits: str = ""
    started_at: float = 0.0
    updated_at: float = 0.0
    ready_since: float | None = None
    health_failures: int = 0
    oom_base: int = 0
    command: list[str] = field(default_factory=list)
    cpus: tuple[int, ...] = ()
    gpus: tuple[int, ...] = ()
    task: asyncio.Task[None] | None = None
    stopping: bool = False

    @property
    def key(self) -> tuple[str, int]:
        return (self.plan.service, self.plan.revision)


class LocalOrchestrator:
    """Runs replicas as local `pier serve` processes (see the module docstring)."""

    def __init__(
        self,
        home: PierHome,
        *,
        on_event: EventSink,
        on_change: ChangeSink,
        host: str = "127.0.0.1",
        drain_seconds: float = 1.0,
        grace_seconds: float = 10.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        health_interval: float = 0.25,
        python: str = sys.executable,
        clock: Callable[[], float] = time.monotonic,
        limits: Mode | None = None,
        gpu_devices: int | None = None,
    ) -> None:
        self.home = home
        self._on_event = on_event
        self._on_change = on_change
        self._host = host
        self._drain = drain_seconds
        self._grace = grace_seconds
        self._backoff = (backoff_initial, backoff_max)
        self._interval = health_interval
        self._python = python
        self._clock = clock
        self._prefer: Mode | None = limits
        self._limiter: Limiter | None = None
        detected = detect_gpu_count()
        self._gpus_detected = detected > 0
        # Without GPUs, indices are still handed out (over gpu_devices or one device) so a
        # spec asking for GPUs behaves the same on a laptop; the limits text says so.
        self._gpu_devices = gpu_devices if gpu_devices is not None else max(detected, 1)
        self._replicas: dict[str, _Replica] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._locks: dict[tuple[str, int], asyncio.Lock] = {}
        self._client: httpx.AsyncClient | None = None

    # ---- the Orchestrator interface ----------------------------------------------------

    @property
    def limiter(self) -> Limiter:
        if self._limiter is None:
            self.home.replicas_dir.mkdir(parents=True, exist_ok=True)
            self._limiter = detect_limiter(self.home.root, self._prefer)
        return self._limiter

    async def start(self) -> None:
        """Re-adopt the replicas a previous control plane left in ``replicas/``."""
        self.home.replicas_dir.mkdir(parents=True, exist_ok=True)
        for folder in sorted(self.home.replicas_dir.iterdir()):
            saved = ReplicaFile.load(folder)
            if saved is None or saved.id in self._replicas:
                continue
            r = _Replica(
                id=saved.id,
                plan=RevisionPlan(saved.service, saved.revision, saved.spec),
                port=saved.port,
                child=False,
                restarts=saved.restarts,
                started_at=saved.started_at,
                command=saved.command,
                cpus=tuple(saved.cpus),
                gpus=tuple(saved.gpus),
            )
            self._replicas[r.id] = r
            r.limits = describe_limits(
                self.limiter.mode,
                Resources.from_spec(r.plan.spec),
                r.cpus,
                r.gpus,
                self._gpus_detected,
            )
            if saved.pid is not None and processes.is_running(saved.pid, saved.start_ticks):
                r.pid, r.ticks = saved.pid, saved.start_ticks
                r.oom_base = self.limiter.oom_kills(r.id)
                self._set(r, ReplicaState.STARTING)
                self._emit(r, EventKind.REPLICA_ADOPTED, f"adopted pid {r.pid} on port {r.port}")
                self._start_task(r, spawn=False)
            else:
                # Dead while nobody watched: reported, then restarted by the next apply.
                r.reason = "exited while the control plane was down"
                self._set(r, ReplicaState.FAILED)
                self._emit(r, EventKind.REPLICA_EXITED, r.reason)

    async def apply(self, plan: RevisionPlan, replicas: int) -> None:
        """Start missing replicas of the revision; drain and stop extra ones in the background."""
        key = (plan.service, plan.revision)
        async with self._locks.setdefault(key, asyncio.Lock()):
            active = [r for r in self._replicas.values() if r.key == key and not r.stopping]
            for r in active:
                r.plan = plan
                if r.task is None:  # dead on adoption: restart it now
                    r.restarts += 1
                    self._start_task(r, spawn=True)
            for _ in range(replicas - len(active)):
                r = _Replica(
                    id=f"{plan.service}-{plan.revision}-"
                    + "".join(secrets.choice(_ID_CHARS) for _ in range(5)),
                    plan=plan,
                    port=processes.free_port(self._host),
                )
                self._replicas[r.id] = r
                self._start_task(r, spawn=True)
            extra = len(active) - replicas
            if extra > 0:
                candidates = [(r.id, r.state is ReplicaState.READY, r.started_at) for r in active]
                for rid in pick_victims(candidates, extra):
                    victim = self._replicas[rid]
                    victim.stopping = True
                    self._spawn_task(self._stop(victim), f"pier-stop-{rid}")

    async def delete(self, service: str, revision: int) -> None:
        """Drain and stop every replica of the revision (in parallel) and forget them."""
        async with self._locks.setdefault((service, revision), asyncio.Lock()):
            doomed = [r for r in self._replicas.values() if r.key == (service, revision)]
            pending = [r for r in doomed if r.stopping]
            for r in doomed:
                r.stopping = True
            await asyncio.gather(*(self._stop(r) for r in doomed if r not in pending))
            # Scale-downs already under way finish in their own tasks; wait for them too.
            while any(r.id in self._replicas for r in pending):
                await asyncio.sleep(0.05)
        self._locks.pop((service, revision), None)

    def observe(self) -> list[ReplicaRecord]:
        """Every replica known, as it is now."""
        return [self._record(r) for r in self._replicas.values()]

    async def logs(
        self, service: str, replica: str | None = None, tail: int = 100, follow: bool = False
    ) -> AsyncIterator[str]:
        """The last ``tail`` lines of each replica's log, then (``follow``) new lines."""
        files = live_logs(self.home.replicas_dir, service)
        if replica is not None or not files:
            # A replica that just went away: its log was kept under _logs/.
            files.update({p.stem: p for p in archived_logs(self.home.replicas_dir, service)})
        if replica is not None:
            files = {rid: p for rid, p in files.items() if rid == replica}
        async for line in read_logs(files, tail, follow, self._interval):
            yield line

    async def close(self, stop_replicas: bool = False) -> None:
        """Stop supervising; with ``stop_replicas`` also drain and stop every replica."""
        if stop_replicas:
            live = [r for r in self._replicas.values() if not r.stopping]
            for r in live:
                r.stopping = True
            await asyncio.gather(*(self._stop(r) for r in live))
        stops = [t for t in self._tasks if t.get_name().startswith("pier-stop-")]
        if stop_replicas:  # scale-downs under way: let them finish too
            await asyncio.gather(*stops, return_exceptions=True)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        if stop_replicas and self._limiter is not None:
            self._limiter.close()

    # ---- supervision ---------------------------------------------------------------------

    def _spawn_task(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("%s failed", task.get_name(), exc_info=task.exception())

    def _start_task(self, r: _Replica, spawn: bool) -> None:
        r.task = self._spawn_task(self._supervise(r, spawn), f"pier-replica-{r.id}")

    async def _supervise(self, r: _Replica, spawn: bool) -> None:
        """Keep the replica running: watch it, and restart it with backoff when it ends."""
        if spawn:
            first = EventKind.REPLICA_STARTED if r.restarts == 0 else EventKind.REPLICA_RESTARTED
            self._launch(r, first)
        while r.state is not ReplicaState.FAILED:  # FAILED: a spec no restart can fix
            if r.pid is not None:
                await self._watch(r)
            r.failures += 1
            self._set(r, ReplicaState.BACKOFF)
            await asyncio.sleep(backoff_delay(r.failures, *self._backoff))
            r.restarts += 1
            self._launch(r, EventKind.REPLICA_RESTARTED)

    def _launch(self, r: _Replica, kind: EventKind) -> None:
        """Spawn the replica's process; on failure leave pid None with the reason set."""
        folder = self.home.replicas_dir / r.id
        res = Resources.from_spec(r.plan.spec)
        try:
            config = to_model_config(ServiceSpec.model_validate(r.plan.spec))
        except ValidationError as exc:
            r.reason = f"invalid spec: {exc.errors()[0]['msg']}"
            self._set(r, ReplicaState.FAILED)
            return
        folder.mkdir(parents=True, exist_ok=True)
        write_atomic(folder / "model-config.json", json.dumps(config).encode())
        if not processes.port_is_free(r.port, self._host):
            r.port = processes.free_port(self._host)
        others = [o for o in self._replicas.values() if o is not r and o.pid is not None]
        if self.limiter.mode == "rlimit" and res.cpu is not None:
            r.cpus = spread_cpus(res.cpu, sorted(os.sched_getaffinity(0)), [o.cpus for o in others])
        r.gpus = assign_gpus(res.gpu, self._gpu_devices, [o.gpus for o in others])
        r.command = [
            self._python, "-m", "pier", "serve",
            "--model", f"{r.plan.service}={r.plan.spec['model']}",
            "--model-config", str(folder / "model-config.json"),
            "--http-host", self._host, "--http-port", str(r.port), "--grpc-port", "0",
            "--cache-dir", str(self.home.cache_dir), "--log-format", "json",
        ]  # fmt: skip
        env = {**os.environ, **(r.plan.spec.get("env") or {}), "PYTHONUNBUFFERED": "1"}
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
            return
        r.limits = describe_limits(self.limiter.mode, res, r.cpus, r.gpus, self._gpus_detected)
        try:
            self.limiter.apply(r.pid, r.id, res, r.cpus)
        except OSError as exc:
            r.limits = f"not enforced ({exc})"
            logger.warning("replica %s: limits not applied: %s", r.id, exc)
        r.ticks, r.child = processes.start_ticks(r.pid), True
        r.started_at, r.ready_since, r.health_failures = time.time(), None, 0
        r.exit_code = None
        self._save(r)
        self._set(r, ReplicaState.STARTING)
        self._emit(r, kind, f"pid {r.pid} on port {r.port}; limits: {r.limits}")

    async def _watch(self, r: _Replica) -> None:
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
            await asyncio.sleep(self._interval)

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=max(1.0, self._interval * 4), trust_env=False)
        return self._client

    async def _check_health(self, r: _Replica) -> None:
        try:
            resp = await self._http().get(f"http://{self._host}:{r.port}/v2/health/ready")
            ready = resp.status_code == 200
        except httpx.HTTPError:
            ready = False
        now = self._clock()
        if ready:
            r.health_failures = 0
            if r.state is not ReplicaState.READY:
                r.ready_since = now
                self._set(r, ReplicaState.READY)
                self._emit(r, EventKind.REPLICA_READY, f"ready on {self._host}:{r.port}")
            elif r.ready_since is not None and now - r.ready_since >= STABLE_SECONDS:
                r.failures = 0
        elif r.state is ReplicaState.READY:
            r.health_failures += 1
            if r.health_failures >= HEALTH_FAILURES:
                r.ready_since = None
                r.reason = f"health check failed {r.health_failures} times in a row"
                self._set(r, ReplicaState.STARTING)

    async def _load_failure(self, r: _Replica) -> str:
        """The load error when every version of the replica's model failed to load; else ""."""
        url = f"http://{self._host}:{r.port}/v2/repository/index"
        try:
            resp = await self._http().post(url, json={})
            entries = resp.json() if resp.status_code == 200 else []
        except (httpx.HTTPError, ValueError):
            return ""
        mine = [e for e in entries if isinstance(e, dict) and e.get("name") == r.plan.service]
        # "not loaded" is a model the server has not got to yet (a slow scan or download):
        # only a version whose load failed carries its error as the reason.
        if mine and all(
            e.get("state") == "UNAVAILABLE" and e.get("reason") not in (None, "", "not loaded")
            for e in mine
        ):
            return str(mine[-1]["reason"])
        return ""

    def _record_exit(self, r: _Replica, ended: processes.Exit, reason: str = "") -> None:
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
        self._emit(r, kind, r.reason)
        self._on_change()

    async def _terminate(self, r: _Replica) -> processes.Exit | None:
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

    async def _stop(self, r: _Replica) -> None:
        """Drain (out of routing first), stop the process, remove the folder, keep the log."""
        if r.task is not None and r.task is not asyncio.current_task():
            r.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await r.task
        if r.pid is not None and r.state is ReplicaState.READY:
            self._set(r, ReplicaState.DRAINING)
            await asyncio.sleep(self._drain)
        else:
            self._set(r, ReplicaState.DRAINING)
        ended = await self._terminate(r)
        message = ended.describe() if ended is not None else "was not running"
        r.exit_code = ended.code if ended is not None else r.exit_code
        r.pid = None
        self._emit(r, EventKind.REPLICA_STOPPED, f"stopped: {message}")
        self.limiter.remove(r.id)
        folder = self.home.replicas_dir / r.id
        archive_log(folder, self.home.replicas_dir, r.plan.service)
        shutil.rmtree(folder, ignore_errors=True)
        self._replicas.pop(r.id, None)
        r.state = ReplicaState.STOPPED
        self._on_change()

    # ---- bookkeeping -----------------------------------------------------------------------

    def _set(self, r: _Replica, state: ReplicaState) -> None:
        r.updated_at = time.time()
        if r.state is not state:
            r.state = state
            self._on_change()

    def _emit(self, r: _Replica, kind: EventKind, message: str) -> None:
        r.updated_at = time.time()
        self._on_event(ReplicaEvent(r.plan.service, r.plan.revision, r.id, kind, message))

    def _save(self, r: _Replica) -> None:
        ReplicaFile(
            id=r.id, service=r.plan.service, revision=r.plan.revision, port=r.port,
            pid=r.pid, start_ticks=r.ticks, command=r.command, spec=r.plan.spec,
            restarts=r.restarts, started_at=r.started_at, gpus=list(r.gpus), cpus=list(r.cpus),
        ).save(self.home.replicas_dir / r.id)  # fmt: skip

    def _record(self, r: _Replica) -> ReplicaRecord:
        return ReplicaRecord(
            id=r.id,
            service=r.plan.service,
            revision=r.plan.revision,
            state=r.state,
            address=f"{self._host}:{r.port}",
            pid=r.pid,
            restarts=r.restarts,
            exit_code=r.exit_code,
            reason=r.reason,
            limits=r.limits,
            started_at=r.started_at,
            updated_at=r.updated_at,
            extra={"adopted": not r.child, "gpus": list(r.gpus), "cpus": list(r.cpus)},
        )
