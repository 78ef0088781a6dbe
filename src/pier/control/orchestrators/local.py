"""The local orchestrator: each replica is a `pier serve` process on this machine, supervised.

A replica serves one model, named after its service, on its own port on 127.0.0.1. One
asyncio task per replica watches it and restarts it with backoff (see supervise).
Replicas run in their own session and survive the control plane; a new one re-adopts
them from ``replicas/<id>/replica.json``. Scale-downs drain and stop the replicas that
are not ready first, then the youngest.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import string
import sys
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any

from pier.control.orchestrators import processes
from pier.control.orchestrators.base import ChangeSink, EventSink, RevisionPlan
from pier.control.orchestrators.limits import Limiter, Mode
from pier.control.orchestrators.replica import Replica, backoff_delay
from pier.control.orchestrators.replica_files import (
    ReplicaFile,
    archived_logs,
    live_logs,
    read_logs,
)
from pier.control.orchestrators.supervise import Supervisor
from pier.control.records import EventKind, ReplicaRecord, ReplicaState
from pier.home import PierHome

__all__ = ["LocalOrchestrator", "backoff_delay", "pick_victims"]

logger = logging.getLogger(__name__)

_ID_CHARS = string.ascii_lowercase + string.digits


def pick_victims(replicas: Sequence[tuple[str, bool, float]], count: int) -> list[str]:
    """Which replicas to stop when scaling down: not ready first, then the youngest.

    ``replicas`` holds (id, ready, started_at) tuples.
    """
    ordered = sorted(replicas, key=lambda r: (r[1], -r[2], r[0]))
    return [rid for rid, _, _ in ordered[: max(0, count)]]


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
        self._sup = Supervisor(
            home,
            on_event=on_event,
            on_change=on_change,
            host=host,
            drain_seconds=drain_seconds,
            grace_seconds=grace_seconds,
            backoff=(backoff_initial, backoff_max),
            health_interval=health_interval,
            python=python,
            clock=clock,
            limits=limits,
            gpu_devices=gpu_devices,
        )
        self._replicas = self._sup.replicas
        self._tasks: set[asyncio.Task[None]] = set()
        self._locks: dict[tuple[str, int], asyncio.Lock] = {}

    # ---- the Orchestrator interface ----------------------------------------------------

    @property
    def limiter(self) -> Limiter:
        """How replicas' resources are capped here (see limits)."""
        return self._sup.limiter

    async def start(self) -> None:
        """Re-adopt the replicas a previous control plane left in ``replicas/``."""
        self.home.replicas_dir.mkdir(parents=True, exist_ok=True)
        for folder in sorted(self.home.replicas_dir.iterdir()):
            saved = ReplicaFile.load(folder)
            if saved is None or saved.id in self._replicas:
                continue
            r = Replica(
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
            r.limits = self._sup.limits_text(r)
            if saved.pid is not None and processes.is_running(saved.pid, saved.start_ticks):
                r.pid, r.ticks = saved.pid, saved.start_ticks
                r.oom_base = self.limiter.oom_kills(r.id)
                self._sup.set_state(r, ReplicaState.STARTING)
                self._sup.emit(
                    r, EventKind.REPLICA_ADOPTED, f"adopted pid {r.pid} on port {r.port}"
                )
                self._start_task(r, spawn=False)
            else:
                # Dead while nobody watched: reported, then restarted by the next apply.
                r.reason = "exited while the control plane was down"
                self._sup.set_state(r, ReplicaState.FAILED)
                self._sup.emit(r, EventKind.REPLICA_EXITED, r.reason)

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
                r = Replica(
                    id=f"{plan.service}-{plan.revision}-"
                    + "".join(secrets.choice(_ID_CHARS) for _ in range(5)),
                    plan=plan,
                    port=processes.free_port(self._sup.host),
                )
                self._replicas[r.id] = r
                self._start_task(r, spawn=True)
            extra = len(active) - replicas
            if extra > 0:
                candidates = [(r.id, r.state is ReplicaState.READY, r.started_at) for r in active]
                for rid in pick_victims(candidates, extra):
                    victim = self._replicas[rid]
                    victim.stopping = True
                    self._spawn_task(self._sup.stop(victim), f"pier-stop-{rid}")

    async def delete(self, service: str, revision: int) -> None:
        """Drain and stop every replica of the revision (in parallel) and forget them."""
        async with self._locks.setdefault((service, revision), asyncio.Lock()):
            doomed = [r for r in self._replicas.values() if r.key == (service, revision)]
            pending = [r for r in doomed if r.stopping]
            for r in doomed:
                r.stopping = True
            await asyncio.gather(*(self._sup.stop(r) for r in doomed if r not in pending))
            # Scale-downs already under way finish in their own tasks; wait for them too.
            while any(r.id in self._replicas for r in pending):
                await asyncio.sleep(0.05)
        self._locks.pop((service, revision), None)

    def observe(self) -> list[ReplicaRecord]:
        """Every replica known, as it is now."""
        return [self._sup.record(r) for r in self._replicas.values()]

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
        async for line in read_logs(files, tail, follow, self._sup.interval):
            yield line

    async def close(self, stop_replicas: bool = False) -> None:
        """Stop supervising; with ``stop_replicas`` also drain and stop every replica."""
        if stop_replicas:
            live = [r for r in self._replicas.values() if not r.stopping]
            for r in live:
                r.stopping = True
            await asyncio.gather(*(self._sup.stop(r) for r in live))
        stops = [t for t in self._tasks if t.get_name().startswith("pier-stop-")]
        if stop_replicas:  # scale-downs under way: let them finish too
            await asyncio.gather(*stops, return_exceptions=True)
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._sup.close(stop_replicas)

    # ---- tasks ---------------------------------------------------------------------------

    def _spawn_task(self, coro: Coroutine[Any, Any, None], name: str) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            logger.error("%s failed", task.get_name(), exc_info=task.exception())

    def _start_task(self, r: Replica, spawn: bool) -> None:
        r.task = self._spawn_task(self._sup.supervise(r, spawn), f"pier-replica-{r.id}")
