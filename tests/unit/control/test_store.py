"""The store against SQLite and a real PostgreSQL server: state, history, races, migrations, errors."""

from __future__ import annotations

import socket
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from pier.control.records import EventKind, ReplicaRecord, ReplicaState
from pier.control.store import Store
from pier.control.store_engine import open_engine, parse_url
from pier.control.store_migrations import LATEST, MIGRATIONS, migrate
from pier.control.store_schema import metadata
from pier.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidInput,
    NotFound,
    StoreError,
)
from tests.replicas import observe

SPEC = {"name": "resnet", "model": {"uri": "s3://models/resnet"}, "replicas": 2}


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def store(store_url: str, clock: Clock) -> Iterator[Store]:
    s = Store(store_url, clock=clock)
    yield s
    s.close()


def engine_for(url: str) -> sa.Engine:
    return open_engine(parse_url(url), busy_timeout=5, connect_timeout=5)


def replica(id: str, service: str = "resnet", **kw: object) -> ReplicaRecord:
    fields: dict[str, object] = {"revision": 1, "state": ReplicaState.STARTING, **kw}
    return ReplicaRecord(id=id, service=service, **fields)  # type: ignore[arg-type]


def kinds(store: Store, service: str) -> list[EventKind]:
    return [e.kind for e in store.list_events(service)]


# -- services and revisions -------------------------------------------------------------


def test_create_then_get_and_list(store: Store, clock: Clock) -> None:
    service, revision = store.create_service("resnet", SPEC, 2)
    assert (service.name, service.revision, service.replicas, service.stopped) == (
        "resnet",
        1,
        2,
        False,
    )
    assert service.created_at == service.updated_at == 1000.0
    assert (revision.service, revision.number, revision.spec, revision.created_at) == (
        "resnet",
        1,
        SPEC,
        1000.0,
    )
    assert store.get_service("resnet") == service
    assert store.get_revision("resnet", 1) == revision
    clock.now = 1001.0
    store.create_service("bert", {"name": "bert"}, 0)
    assert [s.name for s in store.list_services()] == ["bert", "resnet"]
    [created] = store.list_events("resnet")
    assert (created.kind, created.revision, created.time) == (EventKind.CREATED, 1, 1000.0)


def test_create_existing_name_is_refused_and_suggests_update(store: Store) -> None:
    store.create_service("resnet", SPEC, 1)
    with pytest.raises(AlreadyExists, match="already exists") as info:
        store.create_service("resnet", {"other": True}, 3)
    assert "pier update resnet" in info.value.message
    assert store.get_revision("resnet", 1).spec == SPEC
    assert kinds(store, "resnet") == [EventKind.CREATED]


def test_missing_service_is_not_found_everywhere(store: Store) -> None:
    calls: list[Callable[[], object]] = [
        lambda: store.get_service("ghost"),
        lambda: store.update_service("ghost", SPEC),
        lambda: store.set_replicas("ghost", 1),
        lambda: store.set_stopped("ghost", True),
        lambda: store.delete_service("ghost"),
        lambda: store.get_revision("ghost", 1),
        lambda: store.list_revisions("ghost"),
    ]
    for call in calls:
        with pytest.raises(NotFound, match="'ghost'"):
            call()
    assert store.list_events("ghost") == []


def test_update_appends_a_revision_and_leaves_the_old_one_alone(store: Store, clock: Clock) -> None:
    spec: dict[str, Any] = {"name": "resnet", "batching": {"max_batch_size": 8}}
    store.create_service("resnet", spec, 2)
    spec["batching"]["max_batch_size"] = 64  # the caller's dict changing later changes nothing
    clock.now = 2000.0
    second = store.update_service("resnet", {"name": "resnet", "v": 2})
    third = store.update_service("resnet", {"name": "resnet", "v": 3}, replicas=5)
    assert (second.number, third.number, second.created_at) == (2, 3, 2000.0)
    service = store.get_service("resnet")
    assert (service.revision, service.replicas, service.updated_at) == (3, 5, 2000.0)
    assert service.created_at == 1000.0
    assert [r.number for r in store.list_revisions("resnet")] == [1, 2, 3]
    assert store.get_revision("resnet", 1).spec == {
        "name": "resnet",
        "batching": {"max_batch_size": 8},
    }
    assert store.get_revision("resnet", 2).spec == {"name": "resnet", "v": 2}
    assert not hasattr(store, "update_revision")
    events = store.list_events("resnet")
    assert [(e.kind, e.revision) for e in events] == [
        (EventKind.CREATED, 1),
        (EventKind.UPDATED, 2),
        (EventKind.UPDATED, 3),
    ]
    assert "from 2 to 5" in events[-1].message
    with pytest.raises(NotFound, match="no revision 4"):
        store.get_revision("resnet", 4)


def test_scale_records_from_and_to(store: Store, clock: Clock) -> None:
    store.create_service("resnet", SPEC, 2)
    clock.now = 1500.0
    scaled = store.set_replicas("resnet", 4)
    assert (scaled.replicas, scaled.updated_at, scaled.revision) == (4, 1500.0, 1)
    assert store.get_service("resnet") == scaled
    assert store.set_replicas("resnet", 4) == scaled  # unchanged: nothing recorded
    event = store.list_events("resnet")[-1]
    assert (event.kind, event.message) == (EventKind.SCALED, "scaled from 2 to 4")
    assert kinds(store, "resnet") == [EventKind.CREATED, EventKind.SCALED]
    with pytest.raises(InvalidInput):
        store.set_replicas("resnet", -1)


def test_stop_then_start_keeps_desired_replicas(store: Store) -> None:
    store.create_service("resnet", SPEC, 3)
    stopped = store.set_stopped("resnet", True)
    assert (stopped.stopped, stopped.replicas) == (True, 3)
    assert store.get_service("resnet").stopped is True
    store.set_stopped("resnet", True)  # already stopped: no second event
    started = store.set_stopped("resnet", False)
    assert (started.stopped, started.replicas) == (False, 3)
    assert kinds(store, "resnet") == [EventKind.CREATED, EventKind.STOPPED, EventKind.STARTED]


def test_delete_keeps_history_and_recreate_starts_again_at_revision_1(store: Store) -> None:
    store.create_service("resnet", SPEC, 1)
    store.update_service("resnet", {"v": 2})
    observe(store, replica("r1", revision=2))
    store.delete_service("resnet")
    with pytest.raises(NotFound):
        store.get_service("resnet")
    assert store.list_services() == []
    assert store.list_replicas() == []
    assert kinds(store, "resnet") == [EventKind.CREATED, EventKind.UPDATED, EventKind.DELETED]

    service, revision = store.create_service("resnet", {"v": "new"}, 1)
    assert (service.revision, revision.number) == (1, 1)
    assert [r.spec for r in store.list_revisions("resnet")] == [{"v": "new"}]
    assert kinds(store, "resnet")[-2:] == [EventKind.DELETED, EventKind.CREATED]


def test_bad_arguments_are_invalid_input(store: Store) -> None:
    with pytest.raises(InvalidInput, match="replicas"):
        store.create_service("resnet", SPEC, -1)
    with pytest.raises(InvalidInput, match="JSON"):
        store.create_service("resnet", {"model": object()}, 1)
    with pytest.raises(InvalidInput, match="limit"):
        store.list_events("resnet", limit=-1)
    assert store.list_services() == []


# -- replicas ----------------------------------------------------------------------------


def test_observed_replicas_are_inserted_then_replaced(store: Store) -> None:
    store.create_service("resnet", SPEC, 2)
    store.create_service("bert", SPEC, 1)
    first = replica("r1", address="127.0.0.1:9001", pid=42, extra={"port": 9001})
    observe(store, first)
    observe(store, replica("b1", "bert"))
    assert store.list_replicas("resnet") == [first]
    ready = replica(
        "r1",
        state=ReplicaState.READY,
        address="127.0.0.1:9001",
        pid=42,
        restarts=1,
        exit_code=137,
        reason="killed for memory",
        limits="cgroup v2: memory.max=1G",
        started_at=10.5,
        updated_at=11.25,
        extra={"gpu": [0, 1]},
    )
    observe(store, ready)
    assert store.list_replicas("resnet") == [ready]
    assert [r.id for r in store.list_replicas()] == ["b1", "r1"]  # by service, then id
    observe(store, replica("g1", "ghost"))  # a replica of no service is not kept
    assert [r.id for r in store.list_replicas()] == ["b1", "r1"]


def test_sync_replicas_replaces_everything_and_skips_deleted_services(store: Store) -> None:
    store.create_service("resnet", SPEC, 2)
    observe(store, replica("old"))
    observed = [
        replica("r2", state=ReplicaState.READY),
        replica("r1"),
        replica("x1", "deleted-meanwhile"),
    ]
    store.sync_replicas(observed)
    assert [(r.id, r.state) for r in store.list_replicas()] == [
        ("r1", ReplicaState.STARTING),
        ("r2", ReplicaState.READY),
    ]
    store.sync_replicas([])
    assert store.list_replicas() == []


# -- events ------------------------------------------------------------------------------


def test_events_newest_limit_oldest_first_and_after(store: Store, clock: Clock) -> None:
    added = []
    for i in range(10):
        clock.now = 1000.0 + i
        added.append(store.add_event("resnet", EventKind.REPLICA_READY, f"e{i}", 1, f"r{i}"))
    store.add_event("bert", EventKind.REPLICA_EXITED, "elsewhere")
    assert [e.id for e in added] == sorted({e.id for e in added})
    assert store.list_events("resnet") == added  # the service need not exist
    assert [e.message for e in store.list_events("resnet", limit=3)] == ["e7", "e8", "e9"]
    after = added[4].id
    assert [e.message for e in store.list_events("resnet", after=after)] == [
        "e5",
        "e6",
        "e7",
        "e8",
        "e9",
    ]
    assert [e.message for e in store.list_events("resnet", limit=2, after=after)] == ["e8", "e9"]
    assert store.list_events("resnet", after=added[-1].id) == []
    assert store.list_events("resnet", limit=0) == []
    last = added[-1]
    assert (last.kind, last.revision, last.replica, last.time) == (
        EventKind.REPLICA_READY,
        1,
        "r9",
        1009.0,
    )


# -- concurrency -------------------------------------------------------------------------


def test_threads_writing_at_once_lose_nothing(store_url: str) -> None:
    threads, writes = 8, 25
    store = Store(store_url)
    store.create_service("shared", SPEC, 1)
    for t in range(threads):
        store.create_service(f"own-{t}", SPEC, 0)
    start = threading.Barrier(threads)
    failures: list[BaseException] = []

    def work(t: int) -> None:
        try:
            start.wait()
            for i in range(writes):
                store.update_service("shared", {"thread": t, "write": i})
                store.add_event(f"own-{t}", EventKind.REPLICA_READY, f"write {i}")
                store.set_replicas(f"own-{t}", i + 1)
                store.list_services()
        except BaseException as exc:
            failures.append(exc)

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    try:
        assert failures == []
        total = threads * writes + 1
        assert store.get_service("shared").revision == total
        revs = store.list_revisions("shared")
        assert [r.number for r in revs] == list(range(1, total + 1))
        assert {(r.spec["thread"], r.spec["write"]) for r in revs[1:]} == {
            (t, i) for t in range(threads) for i in range(writes)
        }
        assert len(store.list_events("shared", limit=1000)) == total
        for t in range(threads):
            own = store.list_events(f"own-{t}", limit=1000)
            assert [e.message for e in own if e.kind == EventKind.REPLICA_READY] == [
                f"write {i}" for i in range(writes)
            ]
            assert store.get_service(f"own-{t}").replicas == writes
    finally:
        store.close()


def test_racing_creates_of_one_name_let_exactly_one_win(store_url: str) -> None:
    threads = 8
    stores = [Store(store_url) for _ in range(2)]  # two processes' worth of pools
    start = threading.Barrier(threads)
    outcomes: list[str] = []

    def work(t: int) -> None:
        start.wait()
        try:
            stores[t % 2].create_service("resnet", {"thread": t}, 1)
            outcomes.append("created")
        except AlreadyExists:
            outcomes.append("exists")
        except BaseException as exc:
            outcomes.append(repr(exc))

    workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    try:
        assert sorted(outcomes) == ["created"] + ["exists"] * (threads - 1)
        assert kinds(stores[0], "resnet") == [EventKind.CREATED]
    finally:
        for s in stores:
            s.close()


# -- migrations --------------------------------------------------------------------------


def test_a_version_1_database_is_upgraded_with_its_data(store_url: str) -> None:
    engine = engine_for(store_url)
    try:
        assert migrate(engine, MIGRATIONS[:1]) == 1
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "INSERT INTO services (name, revision, replicas, stopped, created_at, updated_at)"
                " VALUES ('resnet', 1, 2, false, 5.0, 6.0)"
            )
            conn.exec_driver_sql(
                "INSERT INTO revisions (service, number, spec, created_at)"
                " VALUES ('resnet', 1, '{\"v\": 1}', 5.0)"
            )
            conn.exec_driver_sql(
                "INSERT INTO events (service, kind, message, time)"
                " VALUES ('resnet', 'created', 'made by v1', 5.0)"
            )
    finally:
        engine.dispose()

    store = Store(store_url)
    try:
        assert store.get_service("resnet").replicas == 2
        assert store.get_revision("resnet", 1).spec == {"v": 1}
        assert [e.message for e in store.list_events("resnet")] == ["made by v1"]
        assert store.update_service("resnet", {"v": 2}).number == 2
    finally:
        store.close()
    engine = engine_for(store_url)
    try:
        with engine.connect() as conn:
            version = conn.exec_driver_sql("SELECT version FROM schema_version").scalar()
        assert version == LATEST > 1
        indexes = {i["name"] for i in sa.inspect(engine).get_indexes("events")}
        assert "events_by_service" in indexes
    finally:
        engine.dispose()


def test_migrated_tables_match_what_the_code_uses(store: Store, store_url: str) -> None:
    engine = engine_for(store_url)
    try:
        inspector = sa.inspect(engine)
        for table in metadata.sorted_tables:
            columns = {c["name"]: c["nullable"] for c in inspector.get_columns(table.name)}
            assert columns == {c.name: c.nullable for c in table.columns}, table.name
            indexes = {i["name"] for i in inspector.get_indexes(table.name)}
            assert indexes == {i.name for i in table.indexes}, table.name
    finally:
        engine.dispose()


def test_reopening_keeps_everything(store_url: str) -> None:
    first = Store(store_url)
    first.create_service("resnet", SPEC, 2)
    first.close()
    second = Store(store_url)
    try:
        assert second.get_service("resnet").replicas == 2
        assert kinds(second, "resnet") == [EventKind.CREATED]
    finally:
        second.close()


def test_a_database_newer_than_the_code_is_refused(store: Store, store_url: str) -> None:
    engine = engine_for(store_url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(f"UPDATE schema_version SET version = {LATEST + 1}")
    finally:
        engine.dispose()
    with pytest.raises(FailedPrecondition, match=rf"version {LATEST + 1}, newer") as info:
        Store(store_url)
    assert "upgrade Pier" in info.value.message


# -- errors and URLs ---------------------------------------------------------------------


def test_sqlite_runs_in_wal_with_foreign_keys(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'deep' / 'er' / 'pier.db'}")  # folders are made
    try:
        engine = store._engine
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 10_000
    finally:
        store.close()


def test_sqlite_locked_too_long_is_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "pier.db"
    store = Store(f"sqlite:///{path}", busy_timeout=0.2)
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process holding the write lock
        started = time.monotonic()
        with pytest.raises(StoreError, match="database is locked") as info:
            store.create_service("resnet", SPEC, 1)
        assert time.monotonic() - started < 5
        assert info.value.code == "unavailable"
        assert str(path) in info.value.message
        assert store.list_services() == []  # readers are not blocked by the writer
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    store.create_service("resnet", SPEC, 1)
    store.close()


def test_postgres_unreachable_fails_fast_without_the_password() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the socket is: nothing listens there
    url = f"postgresql://pier:s3cret-pw@127.0.0.1:{port}/pier"
    started = time.monotonic()
    with pytest.raises(StoreError) as info:
        Store(url, connect_timeout=3)
    assert time.monotonic() - started < 5
    error = info.value
    assert error.code == "unavailable"
    assert f"127.0.0.1:{port}" in error.message
    assert "refused" in error.cause.lower()
    for text in (error.message, error.cause, error.database, repr(error)):
        assert "s3cret-pw" not in text
    assert error.__cause__ is None and error.__suppress_context__


def test_store_urls_are_checked_and_passwords_hidden() -> None:
    assert parse_url("postgres://u:pw@db/pier").drivername == "postgresql+psycopg"
    assert parse_url("postgresql://u:pw@db/pier").drivername == "postgresql+psycopg"
    assert parse_url("sqlite:////tmp/x.db").drivername == "sqlite"
    with pytest.raises(InvalidInput, match="mysql") as info:
        Store("mysql://root:hunter22@db/pier")
    assert "hunter22" not in info.value.message
    with pytest.raises(InvalidInput, match="not a database URL") as info:
        Store("nonsense:pw@@")
    with pytest.raises(InvalidInput, match="names no file"):
        Store("sqlite://")
