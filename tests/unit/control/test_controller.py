"""The controller loop over a real SQLite store, an in-memory orchestrator and route sink, and a
clock the test turns."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable

import pytest

from pier.control.controller import Controller
from pier.control.orchestrators.base import ReplicaEvent, RevisionPlan
from pier.control.reconciler import Desired
from pier.control.records import EventKind, ReplicaRecord, ReplicaState
from pier.control.store import Store

SPEC = {"name": "iris", "model": "/m"}


class Clock:
    """Seconds that pass only when the test (or the orchestrator below) says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class MemoryOrchestrator:
    """The Orchestrator interface over a dict: replicas appear STARTING, the test readies them.

    It reports events to the sink it is given, as the local orchestrator does, and can be
    told to make an action slow (on the clock) or fail.
    """

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.replicas: dict[str, ReplicaRecord] = {}
        self.applied: list[tuple[str, int, int]] = []
        self.deleted: list[tuple[str, int]] = []
        self.on_event: list[ReplicaEvent] | None = None
        self.sink: Controller | None = None
        self.apply_seconds = 0.0
        self.fail_apply: set[str] = set()
        self.hold_delete: asyncio.Event | None = None  # a drain that takes until it is set
        self._next = 0

    async def start(self) -> None:
        pass

    async def apply(self, plan: RevisionPlan, replicas: int) -> None:
        self.clock.now += self.apply_seconds
        if plan.service in self.fail_apply:
            raise RuntimeError(f"no room for {plan.service}")
        self.applied.append((plan.service, plan.revision, replicas))
        mine = [
            r
            for r in self.replicas.values()
            if (r.service, r.revision) == (plan.service, plan.revision)
        ]
        for _ in range(replicas - len(mine)):
            self._next += 1
            rid = f"{plan.service}-{plan.revision}-{self._next:05d}"
            self.replicas[rid] = ReplicaRecord(
                rid, plan.service, plan.revision, ReplicaState.STARTING
            )
            self.emit(rid, EventKind.REPLICA_STARTED, "started")
        for extra in mine[replicas:] if replicas < len(mine) else []:
            del self.replicas[extra.id]

    async def delete(self, service: str, revision: int) -> None:
        self.deleted.append((service, revision))
        if self.hold_delete is not None:
            await self.hold_delete.wait()
        for r in [
            r for r in self.replicas.values() if (r.service, r.revision) == (service, revision)
        ]:
            del self.replicas[r.id]
            self.emit(r.id, EventKind.REPLICA_STOPPED, "stopped")

    def observe(self) -> list[ReplicaRecord]:
        return list(self.replicas.values())

    async def logs(
        self, service: str, replica: str | None = None, tail: int = 100, follow: bool = False
    ) -> AsyncIterator[str]:
        yield f"{service} log"

    async def close(self, stop_replicas: bool = False) -> None:
        pass

    # -- what a replica does on its own ------------------------------------------------------

    def emit(self, rid: str, kind: EventKind, message: str) -> None:
        r = self.replicas.get(rid) or ReplicaRecord(
            rid, rid.split("-", maxsplit=1)[0], int(rid.split("-")[1]), ReplicaState.STOPPED
        )
        if self.sink is not None:
            self.sink.on_event(ReplicaEvent(r.service, r.revision, rid, kind, message))

    def make_ready(self, service: str, revision: int) -> None:
        for r in list(self.replicas.values()):
            if (r.service, r.revision) == (service, revision) and r.state is not ReplicaState.READY:
                self.replicas[r.id] = ReplicaRecord(
                    r.id,
                    r.service,
                    r.revision,
                    ReplicaState.READY,
                    address=f"127.0.0.1:{9000 + len(r.id)}",
                )
                self.emit(r.id, EventKind.REPLICA_READY, "ready")
        if self.sink is not None:
            self.sink.on_change()  # as a real orchestrator does on every state change


class MemoryRoutes:
    """A route sink that keeps what it was last told."""

    def __init__(self) -> None:
        self.routes: dict[str, list[str]] = {}
        #: what each service should be, as published with its routes (for the 503's words)
        self.desired: dict[str, Desired] = {}
        self.removed: list[str] = []

    def set_routes(self, service: str, replicas: list[ReplicaRecord], desired: Desired) -> None:
        self.routes[service] = sorted(r.id for r in replicas)
        self.desired[service] = desired

    def remove_routes(self, service: str) -> None:
        self.routes.pop(service, None)
        self.removed.append(service)


class Rig:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.clock = Clock()
        self.orch = MemoryOrchestrator(self.clock)
        self.routes = MemoryRoutes()
        self.controller = Controller(store, self.orch, self.routes, clock=self.clock, slow_step=1.0)
        self.orch.sink = self.controller

    def run(self) -> None:
        asyncio.run(self.controller.reconcile())

    def kinds(self, service: str = "iris") -> list[tuple[str, int | None]]:
        return [(e.kind.value, e.revision) for e in self.store.list_events(service, 1000)]


@pytest.fixture
def rig(store: Store) -> Rig:
    return Rig(store)


def test_a_new_service_gets_replicas_and_only_ready_ones_are_routed(rig: Rig) -> None:
    rig.store.create_service("iris", SPEC, 2)
    rig.run()
    assert rig.orch.applied == [("iris", 1, 2)]
    assert rig.routes.routes == {"iris": []}
    stored = rig.store.list_replicas("iris")
    assert [r.state for r in stored] == [ReplicaState.STARTING] * 2
    rig.orch.make_ready("iris", 1)
    rig.run()
    assert rig.routes.routes == {"iris": ["iris-1-00001", "iris-1-00002"]}
    assert [k for k, _ in rig.kinds()] == [
        "created", "replica_started", "replica_started", "replica_ready", "replica_ready",
    ]  # fmt: skip


def test_rollout_complete_is_tagged_with_the_new_revision_and_logged_last(rig: Rig) -> None:
    rig.store.create_service("iris", SPEC, 2)
    rig.run()
    rig.orch.make_ready("iris", 1)
    rig.run()
    rig.store.update_service("iris", {**SPEC, "model": "/m2"})
    rig.run()  # revision 2 starts; revision 1 keeps serving
    assert rig.routes.routes["iris"] == ["iris-1-00001", "iris-1-00002"]
    rig.orch.make_ready("iris", 2)  # the events are reported between two passes
    rig.run()
    assert rig.orch.deleted == [("iris", 1)]
    kinds = rig.kinds()
    assert kinds[-1] == ("rollout_complete", 2)
    ready_2 = [i for i, k in enumerate(kinds) if k == ("replica_ready", 2)]
    assert len(ready_2) == 2 and max(ready_2) < len(kinds) - 1
    [event] = [e for e in rig.store.list_events("iris") if e.kind is EventKind.ROLLOUT_COMPLETE]
    assert event.message.startswith("revision 2 serves; revision 1 drained and stopped")
    assert rig.routes.routes["iris"] == ["iris-2-00003", "iris-2-00004"]


def test_a_slow_step_is_logged_by_name(rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    rig.store.create_service("iris", SPEC, 1)
    rig.orch.apply_seconds = 3.0
    with caplog.at_level(logging.WARNING, logger="pier.control.controller"):
        rig.run()
    assert rig.controller.last_pass["apply iris revision 1"] == 3.0
    assert rig.controller.last_pass["read desired"] == 0.0
    slow = [r.getMessage() for r in caplog.records]
    assert slow == ["reconcile step 'apply iris revision 1' took 3.00s (over 1.00s)"]
    rig.orch.apply_seconds = 0.5  # under the threshold: nothing said
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="pier.control.controller"):
        rig.run()
    assert caplog.records == []


def test_a_failing_action_is_recorded_once_and_others_carry_on(rig: Rig) -> None:
    rig.store.create_service("broken", {**SPEC, "name": "broken"}, 1)
    rig.store.create_service("iris", SPEC, 1)
    rig.orch.fail_apply.add("broken")
    for _ in range(3):
        rig.run()
    failed = [e for e in rig.store.list_events("broken") if e.kind is EventKind.RECONCILE_FAILED]
    assert len(failed) == 1 and "no room for broken" in failed[0].message
    assert ("iris", 1, 1) in rig.orch.applied
    rig.orch.fail_apply.clear()
    rig.run()
    assert ("broken", 1, 1) in rig.orch.applied


def test_stop_and_delete_remove_replicas_and_routes(rig: Rig) -> None:
    rig.store.create_service("iris", SPEC, 2)
    rig.run()
    rig.orch.make_ready("iris", 1)
    rig.run()
    assert rig.routes.desired["iris"] == Desired("iris", 1, 2, False)
    rig.store.set_stopped("iris", True)
    rig.run()
    assert rig.orch.deleted == [("iris", 1)] and rig.orch.observe() == []
    assert rig.routes.routes == {"iris": []}
    assert rig.routes.desired["iris"].stopped  # the gateway's 503 says "stopped"
    assert rig.store.list_replicas("iris") == []
    rig.store.delete_service("iris")
    rig.run()
    assert rig.routes.routes == {} and rig.routes.removed == ["iris"]
    assert ("rollout_complete", 1) not in rig.kinds()


def test_replica_changes_reach_the_store_while_a_pass_waits_for_a_drain(rig: Rig) -> None:
    # `pier list` reads the store: a replica turning ready must show there even while the
    # controller's pass is stuck draining another service (which can take seconds).
    async def scenario() -> None:
        rig.store.create_service("slow", {**SPEC, "name": "slow"}, 1)
        rig.store.create_service("iris", SPEC, 2)
        rig.controller.interval = 60.0
        loop = asyncio.create_task(rig.controller.run())
        try:
            await until(lambda: len(rig.store.list_replicas()) == 3)
            rig.orch.hold_delete = asyncio.Event()
            rig.store.set_stopped("slow", True)
            rig.controller.wake()
            await until(lambda: ("slow", 1) in rig.orch.deleted)  # the pass now waits
            rig.orch.make_ready("iris", 1)
            await until(
                lambda: [r.state for r in rig.store.list_replicas("iris")]
                == [ReplicaState.READY] * 2
            )
            assert not rig.orch.hold_delete.is_set()  # it got there without the pass
        finally:
            assert rig.orch.hold_delete is not None
            rig.orch.hold_delete.set()
            loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop

    asyncio.run(asyncio.wait_for(scenario(), 30))


async def until(check: Callable[[], object], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)
