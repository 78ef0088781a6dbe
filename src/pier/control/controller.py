"""The controller loop: read the store, observe the orchestrator, diff, act, publish routes.

Each pass is independent (level-triggered). Every action runs on its own: one that fails
is logged, recorded as a ``reconcile_failed`` event (once per distinct failure, not every
pass) and retried on the next pass, while the other services carry on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any, Protocol

from pier.control.orchestrators.base import Orchestrator, ReplicaEvent, RevisionPlan
from pier.control.reconciler import Action, Apply, Desired, Remove, diff
from pier.control.records import EventKind, ReplicaRecord, ReplicaState
from pier.control.store import Store

log = logging.getLogger(__name__)


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
    ) -> None:
        self.store = store
        self.orchestrator = orchestrator
        self.routes = routes
        self.interval = interval
        self._wake = asyncio.Event()
        self._events: list[ReplicaEvent] = []
        self._specs: dict[tuple[str, int], dict[str, Any]] = {}
        self._failures: dict[str, str] = {}  # action key -> last failure message
        self._routed: set[str] = set()
        self._desired: list[Desired] = []

    # -- sinks the orchestrator calls (from its own tasks; they must not block) --------

    def on_event(self, event: ReplicaEvent) -> None:
        self._events.append(event)
        self._wake.set()

    def on_change(self) -> None:
        self.publish_routes()
        self._wake.set()

    def wake(self) -> None:
        self._wake.set()

    def logs(
        self, service: str, replica: str | None, tail: int, follow: bool
    ) -> AsyncIterator[str]:
        return self.orchestrator.logs(service, replica, tail, follow)

    # -- the loop -----------------------------------------------------------------------

    async def run(self) -> None:
        """Reconcile until cancelled."""
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

    async def reconcile(self) -> None:
        """One pass: flush events, diff desired against observed, act, publish."""
        await self._flush_events()
        self._desired = await asyncio.to_thread(self._read_desired)
        actions = diff(self._desired, self.orchestrator.observe())
        for action in actions:
            await self._act(action)
        observed = self.orchestrator.observe()
        self.publish_routes(observed)
        await asyncio.to_thread(self.store.sync_replicas, observed)
        await self._flush_events()

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
                if action.superseded:
                    await self._record(
                        action.service,
                        EventKind.ROLLOUT_COMPLETE,
                        f"revision {action.revision} drained and stopped: the rollout is complete",
                        revision=action.revision,
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


def _describe(action: Action) -> str:
    if isinstance(action, Remove):
        return f"stopping revision {action.revision} of {action.service}"
    return f"running {action.replicas} replica(s) of {action.service} revision {action.revision}"
