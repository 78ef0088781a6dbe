"""The controller loop: read the store, observe the orchestrator, diff, act, publish routes.

Each pass is independent (level-triggered). Every action runs on its own: one that fails
is logged, recorded as a ``reconcile_failed`` event (once per distinct failure, not every
pass) and retried on the next pass, while the other services carry on. Each step of a
pass is timed with the clock passed in; a step slower than ``slow_step`` seconds is
logged as a warning naming it, as Ray Serve's controller does, so a stuck store or a slow
drain shows up in the log instead of as a control plane that merely feels sluggish.
Replica changes the orchestrator reports reach the store within SYNC_DELAY_SECONDS while
the loop runs, not only at the end of a pass, so what `list` shows is what serves.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol, TypeVar

from pier.control.orchestrators.base import Orchestrator, ReplicaEvent, RevisionPlan
from pier.control.reconciler import Action, Apply, Desired, Remove, diff
from pier.control.records import EventKind, ReplicaRecord, ReplicaState
from pier.control.store import Store

log = logging.getLogger(__name__)

T = TypeVar("T")

#: A step of a reconcile pass slower than this (seconds) is logged as a warning.
SLOW_STEP_SECONDS = 2.0
#: After a replica changes state, how long to gather more changes before writing them.
SYNC_DELAY_SECONDS = 0.1


class RouteSink(Protocol):
    """Where the controller publishes each service's ready replicas (the gateway).

    ``desired`` comes along so that a service with none ready can say why (stopped,
    scaled to 0, or starting).
    """

    def set_routes(self, service: str, replicas: list[ReplicaRecord], desired: Desired) -> None: ...

    def remove_routes(self, service: str) -> None: ...


class Controller:
    """Owns the reconcile loop; ``wake()`` asks for a pass now instead of at the next tick."""

    def __init__(
        self,
        store: Store,
        orchestrator: Orchestrator,
        routes: RouteSink,
        *,
        interval: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
        slow_step: float = SLOW_STEP_SECONDS,
    ) -> None:
        self.store = store
        self.orchestrator = orchestrator
        self.routes = routes
        self.interval = interval
        self._clock = clock
        self._slow_step = slow_step
        #: seconds each step of the last pass took, by step name (also for tests)
        self.last_pass: dict[str, float] = {}
        self._wake = asyncio.Event()
        self._events: list[ReplicaEvent] = []
        self._specs: dict[tuple[str, int], dict[str, Any]] = {}
        self._failures: dict[str, str] = {}  # action key -> last failure message
        self._routed: set[str] = set()
        self._desired: list[Desired] = []
        self._running = False
        self._sync_lock = asyncio.Lock()
        self._sync_task: asyncio.Task[None] | None = None

    # -- sinks the orchestrator calls (from its own tasks; they must not block) --------

    def on_event(self, event: ReplicaEvent) -> None:
        self._events.append(event)
        self._wake.set()

    def on_change(self) -> None:
        self.publish_routes()
        self._wake.set()
        # A pass can be long (it waits for drains); the store, which `list` and `describe`
        # read, should not wait for it to show a replica turning ready or draining.
        if self._running and (self._sync_task is None or self._sync_task.done()):
            self._sync_task = asyncio.get_running_loop().create_task(
                self._sync_soon(), name="pier-sync-replicas"
            )

    def wake(self) -> None:
        self._wake.set()

    def logs(
        self, service: str, replica: str | None, tail: int, follow: bool
    ) -> AsyncIterator[str]:
        return self.orchestrator.logs(service, replica, tail, follow)

    # -- the loop -----------------------------------------------------------------------

    async def run(self) -> None:
        """Reconcile until cancelled."""
        self._running = True
        try:
            while True:
                try:
                    await self.reconcile()
                except asyncio.CancelledError:
                    raise
                except Exception:  # a store outage must not end the loop: retry next tick
                    log.exception("reconcile pass failed")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.interval)
                self._wake.clear()
        finally:
            self._running = False
            if self._sync_task is not None:
                self._sync_task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._sync_task

    async def reconcile(self) -> None:
        """One pass: flush events, diff desired against observed, act, publish."""
        self.last_pass = {}
        await self._step("flush events", self._flush_events())
        self._desired = await self._step("read desired", asyncio.to_thread(self._read_desired))
        actions = diff(self._desired, self.orchestrator.observe())
        for action in actions:
            await self._step(_step_name(action), self._act(action))
        self.publish_routes(self.orchestrator.observe())
        await self._step("sync replicas", self._sync())
        await self._step("flush events", self._flush_events())

    async def _sync(self) -> None:
        """Write what the orchestrator sees now into the store's replica table."""
        async with self._sync_lock:  # one writer at a time, each with a fresh observation
            observed = self.orchestrator.observe()
            await asyncio.to_thread(self.store.sync_replicas, observed)

    async def _sync_soon(self) -> None:
        await asyncio.sleep(SYNC_DELAY_SECONDS)
        try:
            await self._sync()
        except Exception:  # the next pass writes again; a store outage is logged there
            log.debug("replica sync after a change failed", exc_info=True)

    async def _step(self, name: str, work: Awaitable[T]) -> T:
        """Run one step of the pass, timed; warn when it is slow (whether it worked or not)."""
        started = self._clock()
        try:
            return await work
        finally:
            took = self._clock() - started
            self.last_pass[name] = self.last_pass.get(name, 0.0) + took
            if took > self._slow_step:
                log.warning(
                    "reconcile step %r took %.2fs (over %.2fs)", name, took, self._slow_step
                )

    def _read_desired(self) -> list[Desired]:
        out = []
        for s in self.store.list_services():
            out.append(Desired(s.name, s.revision, s.replicas, s.stopped))
        return out

    async def _act(self, action: Action) -> None:
        key = f"{type(action).__name__}:{action.service}:{action.revision}"
        try:
            if isinstance(action, Apply):
                plan = await self._plan(action.service, action.revision)
                await self.orchestrator.apply(plan, action.replicas)
            else:
                await self.orchestrator.delete(action.service, action.revision)
                self._specs.pop((action.service, action.revision), None)
                if action.superseded_by is not None:
                    # After the events already reported (the new revision's replica_ready,
                    # the old one's replica_stopped): the history reads in order.
                    await self._flush_events()
                    await self._record(
                        action.service,
                        EventKind.ROLLOUT_COMPLETE,
                        f"revision {action.superseded_by} serves; revision {action.revision} "
                        "drained and stopped: the rollout is complete",
                        revision=action.superseded_by,
                    )
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            message = f"{_describe(action)} failed: {exc}"
            if self._failures.get(key) != message:
                log.warning("%s", message)
                self._failures[key] = message
                with contextlib.suppress(Exception):
                    await self._record(
                        action.service, EventKind.RECONCILE_FAILED, message, action.revision
                    )
        else:
            self._failures.pop(key, None)

    async def _plan(self, service: str, revision: int) -> RevisionPlan:
        spec = self._specs.get((service, revision))
        if spec is None:
            record = await asyncio.to_thread(self.store.get_revision, service, revision)
            spec = record.spec
            self._specs[(service, revision)] = spec
        return RevisionPlan(service, revision, spec)

    async def _record(
        self, service: str, kind: EventKind, message: str, revision: int | None = None
    ) -> None:
        await asyncio.to_thread(self.store.add_event, service, kind, message, revision)

    async def flush_events(self) -> None:
        """Write the replica events reported since the last pass (also at shutdown)."""
        await self._flush_events()

    async def _flush_events(self) -> None:
        events, self._events = self._events, []
        if not events:
            return

        def write() -> None:
            for e in events:
                self.store.add_event(e.service, e.kind, e.message, e.revision, e.replica)

        await asyncio.to_thread(write)

    # -- routes -------------------------------------------------------------------------

    def publish_routes(self, observed: list[ReplicaRecord] | None = None) -> None:
        """Hand every desired service's ready replicas to the route sink; drop the rest."""
        desired = {d.service: d for d in self._desired}
        ready: dict[str, list[ReplicaRecord]] = {name: [] for name in desired}
        for r in self.orchestrator.observe() if observed is None else observed:
            if r.state == ReplicaState.READY and r.service in ready:
                ready[r.service].append(r)
        for service, replicas in ready.items():
            self.routes.set_routes(service, replicas, desired[service])
        for gone in self._routed - set(ready):
            self.routes.remove_routes(gone)
        self._routed = set(ready)


def _step_name(action: Action) -> str:
    verb = "apply" if isinstance(action, Apply) else "remove"
    return f"{verb} {action.service} revision {action.revision}"


def _describe(action: Action) -> str:
    if isinstance(action, Remove):
        return f"stopping revision {action.revision} of {action.service}"
    return f"running {action.replicas} replica(s) of {action.service} revision {action.revision}"
