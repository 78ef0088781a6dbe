"""The local orchestrator with real `pier serve` replicas on 127.0.0.1."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import httpx
import pytest

from pier.control.orchestrators.base import ReplicaEvent, RevisionPlan
from pier.control.orchestrators.limits import Mode
from pier.control.orchestrators.local import LocalOrchestrator
from pier.control.orchestrators.replica import is_permanent, load_error
from pier.control.records import EventKind, ReplicaRecord, ReplicaState
from pier.home import PierHome
from pier.serving.demo import half_plus_two_onnx
from pier.spec import ServiceSpec

TIMEOUT = 20.0

ALLOCATING_MODEL = """\
import os

class Model:
    def load(self, model_dir):
        # Touch every page so the memory is really used, not just reserved.
        self.block = b"x" * (int(os.environ["ALLOC_MB"]) << 20)

    def predict(self, inputs):
        return inputs
"""


class Harness:
    """An orchestrator on a fresh home, with the events and changes it reported."""

    def __init__(self, root: Path, limits: Mode | None = None) -> None:
        self.root = root
        self.home = PierHome(root / "home")
        self.home.ensure()
        self.events: list[ReplicaEvent] = []
        self.stamps: list[tuple[float, ReplicaEvent]] = []
        self.changes = 0
        self.limits = limits
        self.orch = self.new()

    def new(self) -> LocalOrchestrator:
        def on_change() -> None:
            self.changes += 1

        return LocalOrchestrator(
            self.home,
            on_event=self.record,
            on_change=on_change,
            drain_seconds=0.2,
            grace_seconds=5.0,
            backoff_initial=0.2,
            backoff_max=2.0,
            health_interval=0.1,
            limits=self.limits,
            gpu_devices=2,
        )

    def record(self, event: ReplicaEvent) -> None:
        self.events.append(event)
        self.stamps.append((time.monotonic(), event))

    def model(self, onnx: bytes | None = None) -> str:
        folder = self.root / "models" / "hpt"
        (folder / "1").mkdir(parents=True, exist_ok=True)
        (folder / "1" / "model.onnx").write_bytes(
            onnx if onnx is not None else half_plus_two_onnx()
        )
        return str(folder)

    def plan(self, model: str, revision: int = 1, **spec: Any) -> RevisionPlan:
        full = ServiceSpec.model_validate({"name": "hpt", "model": model, **spec})
        return RevisionPlan("hpt", revision, full.model_dump(mode="json"))

    def kinds(self, replica: str | None = None) -> list[EventKind]:
        return [e.kind for e in self.events if replica is None or e.replica == replica]

    async def until(self, check: Callable[[], Any], what: str, timeout: float = TIMEOUT) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = check()
            if result:
                return result
            await asyncio.sleep(0.05)
        raise AssertionError(f"timed out waiting for {what}; events: {self.events}")

    async def ready(self, count: int, orch: LocalOrchestrator | None = None) -> list[ReplicaRecord]:
        o = orch or self.orch

        def check() -> list[ReplicaRecord]:
            recs = o.observe()
            ok = len(recs) == count and all(r.state is ReplicaState.READY for r in recs)
            return recs if ok else []

        result: list[ReplicaRecord] = await self.until(check, f"{count} ready replicas")
        return result


def run(coro: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(asyncio.wait_for(coro(), 60))


async def predict(address: str) -> list[float]:
    async with httpx.AsyncClient(trust_env=False) as client:
        resp = await client.post(
            f"http://{address}/v1/models/hpt:predict", json={"instances": [1.0, 2.0]}
        )
    resp.raise_for_status()
    result: list[float] = resp.json()["predictions"]
    return result


def environ(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().partition("=")[::2] for item in raw if item)


def test_scale_up_down_and_restart_after_kill(tmp_path: Path) -> None:
    h = Harness(tmp_path)

    async def scenario() -> None:
        plan = h.plan(h.model(), resources={"memory": 1024, "cpu": 1})
        try:
            await h.orch.apply(plan, 2)
            recs = await h.ready(2)
            assert len({r.address for r in recs}) == 2
            for r in recs:
                assert await predict(r.address) == [2.5, 3.0]
                assert r.pid is not None and r.limits != ""
                assert environ(r.pid)["CUDA_VISIBLE_DEVICES"] == ""  # gpu 0: none visible
                assert (h.home.replicas_dir / r.id / "replica.json").exists()
                assert r.id.startswith("hpt-1-")
                assert r.extra["permanent"] is False

            await h.orch.apply(plan, 1)
            stopped = await h.until(
                lambda: [e for e in h.events if e.kind is EventKind.REPLICA_STOPPED], "a stop"
            )
            assert stopped[0].message == "stopped: exited with code 0"  # SIGTERM: clean exit
            gone = stopped[0].replica
            assert not (h.home.replicas_dir / gone).exists()
            assert (h.home.replicas_dir / "_logs" / f"{gone}.log").exists()
            [left] = h.orch.observe()

            assert left.pid is not None
            os.kill(left.pid, signal.SIGKILL)
            await h.until(lambda: EventKind.REPLICA_RESTARTED in h.kinds(left.id), "the restart")
            [again] = await h.ready(1)
            exited = [e for e in h.events if e.kind is EventKind.REPLICA_EXITED]
            assert exited[0].message == "killed by SIGKILL"
            assert again.id == left.id and again.address == left.address
            assert again.restarts == 1 and again.pid != left.pid
            assert await predict(again.address) == [2.5, 3.0]

            lines = [line async for line in h.orch.logs("hpt", tail=5)]
            assert 0 < len(lines) <= 5
            await h.orch.delete("hpt", 1)
            assert h.orch.observe() == []
            assert [p.name for p in h.home.replicas_dir.iterdir()] == ["_logs"]
        finally:
            await h.orch.close(stop_replicas=True)

    run(scenario)


def test_broken_model_backs_off_with_the_load_error(tmp_path: Path) -> None:
    h = Harness(tmp_path)

    async def scenario() -> None:
        try:
            await h.orch.apply(h.plan(h.model(b"not an onnx file")), 1)

            def restarted_three_times() -> bool:
                return h.kinds().count(EventKind.REPLICA_RESTARTED) >= 3

            await h.until(restarted_three_times, "three restarts")
            # Each wait between an exit and the restart that follows is about twice the last.
            waits, exited_at = [], 0.0
            for at, event in h.stamps:
                if event.kind is EventKind.REPLICA_EXITED:
                    exited_at = at
                elif event.kind is EventKind.REPLICA_RESTARTED:
                    waits.append(at - exited_at)
            assert waits[0] >= 0.2 and waits[1] >= 0.4 and waits[2] >= 0.8
            assert waits[0] < waits[1] < waits[2]
            [rec] = h.orch.observe()
            assert rec.restarts >= 2
            assert rec.state in (ReplicaState.STARTING, ReplicaState.BACKOFF)
            assert "model failed to load" in rec.reason
            assert "onnx" in rec.reason.lower() or "protobuf" in rec.reason.lower()
            backoffs = [e.message for e in h.events if e.kind is EventKind.REPLICA_EXITED]
            assert all(m.startswith("model failed to load: ") for m in backoffs)
            # Failing the same way on every start, never ready: a waiting client may stop.
            assert rec.extra["permanent"] is True
        finally:
            await h.orch.close(stop_replicas=True)

    run(scenario)


@pytest.mark.parametrize("mode", [None, "rlimit"])
def test_memory_limit_is_enforced(tmp_path: Path, mode: Mode | None) -> None:
    h = Harness(tmp_path, limits=mode)
    folder = tmp_path / "models" / "hog" / "1"
    folder.mkdir(parents=True)
    (folder / "model.py").write_text(ALLOCATING_MODEL)

    async def scenario() -> None:
        limiter = h.orch.limiter
        # cgroups count touched memory: 600 MiB over a 300 MiB limit. RLIMIT_AS counts
        # address space with generous headroom, so only a much larger ask trips it.
        alloc = 600 if limiter.mode != "rlimit" else 4096
        plan = h.plan(
            str(folder.parent),
            processor="python",
            resources={"memory": 300},
            env={"ALLOC_MB": str(alloc)},
        )
        try:
            await h.orch.apply(plan, 1)
            oom = await h.until(
                lambda: [e for e in h.events if e.kind is EventKind.REPLICA_OOM_KILLED], "OOM"
            )
            [rec] = h.orch.observe()
            if limiter.mode == "rlimit":
                assert oom[0].message == "failed: out of memory (limit 300 MiB)"
                assert rec.limits.startswith("rlimit: address space")
            else:
                assert oom[0].message == "killed: out of memory (limit 300 MiB)"
                assert rec.limits.startswith("cgroup v")
        finally:
            await h.orch.close(stop_replicas=True)

    run(scenario)


def test_replicas_survive_close_and_are_adopted(tmp_path: Path) -> None:
    h = Harness(tmp_path)

    async def scenario() -> None:
        plan = h.plan(h.model())
        second: LocalOrchestrator | None = None
        try:
            await h.orch.apply(plan, 2)
            before = {r.id: r.pid for r in await h.ready(2)}
            await h.orch.close(stop_replicas=False)

            second = h.new()
            await second.start()
            after = {r.id: r.pid for r in await h.ready(2, second)}
            assert after == before
            adopted = [e.replica for e in h.events if e.kind is EventKind.REPLICA_ADOPTED]
            assert sorted(adopted) == sorted(before)
            await second.apply(plan, 2)
            assert {r.id: r.pid for r in second.observe()} == before
            assert all(r.extra["adopted"] for r in second.observe())

            await second.delete("hpt", 1)
            assert second.observe() == []
            for pid in before.values():
                assert pid is not None and not Path(f"/proc/{pid}").exists()
        finally:
            await h.orch.close(stop_replicas=True)
            if second is not None:
                await second.close(stop_replicas=True)

    run(scenario)


def test_logs_tail_then_follow(tmp_path: Path) -> None:
    h = Harness(tmp_path)

    async def scenario() -> None:
        try:
            await h.orch.apply(h.plan(h.model()), 1)
            [rec] = await h.ready(1)
            tail = [line async for line in h.orch.logs("hpt", tail=2)]
            assert len(tail) == 2

            stream: AsyncIterator[str] = h.orch.logs("hpt", rec.id, tail=0, follow=True)

            async def predict_line() -> str:
                # Lines the replica wrote before (its access log is flushed every 0.25 s,
                # later under load) may arrive first: wait for the one of our call.
                async for line in stream:
                    if "predict" in line:
                        return line
                return ""

            first = asyncio.ensure_future(predict_line())
            await asyncio.sleep(0.3)
            await predict(rec.address)
            line = await asyncio.wait_for(first, 5)
            assert "predict" in line
            await stream.aclose()  # type: ignore[attr-defined]
        finally:
            await h.orch.close(stop_replicas=True)

    run(scenario)


def test_server_settings_in_the_environment_stay_out_of_replicas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `pier serve` reads PIER_* variables; the replica's settings come from its spec alone.
    monkeypatch.setenv("PIER_MODEL_CONTROL_MODE", "explicit")  # would load no model at all
    monkeypatch.setenv("PIER_ACCESS_LOG", "false")
    h = Harness(tmp_path)

    async def scenario() -> None:
        try:
            await h.orch.apply(h.plan(h.model()), 1)
            [rec] = await h.ready(1)
            assert await predict(rec.address) == [2.5, 3.0]
            assert rec.pid is not None
            assert not [k for k in environ(rec.pid) if k.startswith("PIER_")]
        finally:
            await h.orch.close(stop_replicas=True)

    run(scenario)


@pytest.mark.parametrize(
    ("resources", "where"),
    [({"cpu": 1e308}, "resources.cpu"), ({"memory": "lots"}, "resources.memory")],
)
def test_a_stored_spec_out_of_bounds_fails_with_an_event_and_leaves_no_process(
    tmp_path: Path, resources: dict[str, Any], where: str
) -> None:
    # A store written before cpu was bounded may hold cpu: 1e308. It used to spawn the
    # replica, crash its supervising task on the cgroup quota (int(inf)), leave it
    # "starting" with no event, and leave the process unreaped after delete.
    h = Harness(tmp_path)

    async def scenario() -> None:
        spec = {"name": "hpt", "model": h.model(), "resources": resources}
        try:
            await h.orch.apply(RevisionPlan("hpt", 1, spec), 1)
            [rec] = await h.until(
                lambda: [r for r in h.orch.observe() if r.state is ReplicaState.FAILED],
                "the replica to fail",
            )
            assert rec.reason.startswith(f"invalid spec: {where}: ")
            assert rec.pid is None
            exited = [e for e in h.events if e.kind is EventKind.REPLICA_EXITED]
            assert exited and "invalid spec" in exited[0].message
            await h.orch.delete("hpt", 1)
            assert h.orch.observe() == []
        finally:
            await h.orch.close(stop_replicas=True)

    run(scenario)


@pytest.mark.parametrize(
    ("ever_ready", "repeats", "permanent"),
    [(False, 0, False), (False, 1, False), (False, 2, True), (False, 5, True), (True, 5, False)],
)
def test_a_failure_is_permanent_when_it_repeats_before_ever_serving(
    ever_ready: bool, repeats: int, permanent: bool
) -> None:
    assert is_permanent(ever_ready, repeats) is permanent


@pytest.mark.parametrize(
    ("index", "error"),
    [
        (
            [{"name": "hpt", "version": "1", "state": "UNAVAILABLE", "reason": "bad file"}],
            "bad file",
        ),
        ([{"name": "hpt", "version": "1", "state": "UNAVAILABLE", "reason": "not loaded"}], ""),
        ([{"name": "hpt", "version": "1", "state": "LOADING", "reason": ""}], ""),
        (
            [
                {"name": "hpt", "version": "1", "state": "UNAVAILABLE", "reason": "bad"},
                {"name": "hpt", "version": "2", "state": "READY", "reason": ""},
            ],
            "",
        ),
        ([{"name": "other", "state": "UNAVAILABLE", "reason": "bad"}], ""),
        ({"error": "not a list"}, ""),
        ([], ""),
    ],
)
def test_the_load_error_is_read_only_when_every_version_failed(index: object, error: str) -> None:
    assert load_error(index, "hpt") == error
