"""The control plane's store: services, revisions, replicas and events in SQLite or PostgreSQL.

Every method is synchronous and thread-safe: the API server calls it from its thread pool
and the controller from its own thread. Each mutation is one transaction, and the ones a
user asks for (create, update, scale, stop, start, delete) record their event in that same
transaction, so history never disagrees with state. Database failures surface as
``StoreError`` (code "unavailable") naming the database with its password hidden.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import orjson
import sqlalchemy as sa

from pier.control.records import (
    INT64_MAX,
    EventKind,
    EventRecord,
    ReplicaRecord,
    RevisionRecord,
    ServiceRecord,
)
from pier.control.store_engine import WRITE, open_engine, parse_url, translate_errors
from pier.control.store_migrations import migrate
from pier.control.store_schema import (
    dump_json,
    event_record,
    events,
    replica_record,
    replica_row,
    replicas,
    revision_record,
    revisions,
    service_record,
    services,
)
from pier.errors import AlreadyExists, InvalidInput, NotFound, PierError
from pier.spec.service import suggest


class Store:
    """Desired and observed state of every service, in one SQL database."""

    def __init__(
        self,
        url: str,
        *,
        clock: Callable[[], float] = time.time,
        busy_timeout: float = 10.0,
        connect_timeout: int = 5,
    ) -> None:
        """Open (creating or upgrading) the database at ``url``.

        ``busy_timeout``: seconds a SQLite call waits for another writer before failing.
        ``connect_timeout``: seconds to wait for a PostgreSQL server (unless the URL says).
        """
        self._clock = clock
        parsed = parse_url(url)
        self.database = parsed.render_as_string(hide_password=True)
        self._secrets = [parsed.password] if parsed.password else []
        self._engine = open_engine(
            parsed, busy_timeout=busy_timeout, connect_timeout=connect_timeout
        )
        try:
            with translate_errors(self.database, self._secrets):
                migrate(self._engine, database=self.database)
        except BaseException:
            self._engine.dispose()
            raise

    def close(self) -> None:
        """Close every pooled connection; the store must not be used afterwards."""
        self._engine.dispose()

    # -- services ---------------------------------------------------------------------

    def create_service(
        self, name: str, spec: dict[str, Any], replicas: int
    ) -> tuple[ServiceRecord, RevisionRecord]:
        """Store a new service at revision 1; AlreadyExists when the name is taken."""
        _check_replicas(replicas)
        text = dump_json(spec, "spec")
        exists = AlreadyExists(
            f"service {name!r} already exists; change it with `pier update {name}`, "
            "or delete it first"
        )
        with self._write(conflict=exists) as conn:
            if conn.execute(sa.select(services.c.name).where(services.c.name == name)).first():
                raise exists
            now = self._clock()
            conn.execute(
                services.insert().values(
                    name=name,
                    revision=1,
                    replicas=replicas,
                    stopped=False,
                    created_at=now,
                    updated_at=now,
                )
            )
            conn.execute(
                revisions.insert().values(service=name, number=1, spec=text, created_at=now)
            )
            self._event(
                conn,
                name,
                EventKind.CREATED,
                f"created at revision 1 with {replicas} replica(s)",
                revision=1,
                now=now,
            )
        service = ServiceRecord(name, 1, replicas, False, now, now)
        return service, RevisionRecord(name, 1, orjson.loads(text), now)

    def get_service(self, name: str) -> ServiceRecord:
        """The service called ``name``; NotFound when there is none."""
        with self._read() as conn:
            return service_record(_fetch_service(conn, name))

    def list_services(self) -> list[ServiceRecord]:
        """Every service, by name."""
        with self._read() as conn:
            rows = conn.execute(sa.select(services).order_by(services.c.name)).all()
        return [service_record(row) for row in rows]

    def update_service(
        self, name: str, spec: dict[str, Any], replicas: int | None = None
    ) -> RevisionRecord:
        """Append revision N+1 with ``spec`` and make it current; set replicas when given."""
        if replicas is not None:
            _check_replicas(replicas)
        text = dump_json(spec, "spec")
        with self._write() as conn:
            row = _fetch_service(conn, name, lock=True)
            number = row.revision + 1
            now = self._clock()
            conn.execute(
                revisions.insert().values(service=name, number=number, spec=text, created_at=now)
            )
            desired = row.replicas if replicas is None else replicas
            conn.execute(
                services.update()
                .where(services.c.name == name)
                .values(revision=number, replicas=desired, updated_at=now)
            )
            message = f"updated to revision {number}"
            if desired != row.replicas:
                message += f", replicas from {row.replicas} to {desired}"
            self._event(conn, name, EventKind.UPDATED, message, revision=number, now=now)
        return RevisionRecord(name, number, orjson.loads(text), now)

    def set_replicas(self, name: str, replicas: int) -> ServiceRecord:
        """Set the desired replica count; a no-op (and no event) when it is unchanged."""
        _check_replicas(replicas)
        with self._write() as conn:
            row = _fetch_service(conn, name, lock=True)
            if row.replicas == replicas:
                return service_record(row)
            now = self._clock()
            conn.execute(
                services.update()
                .where(services.c.name == name)
                .values(replicas=replicas, updated_at=now)
            )
            self._event(
                conn,
                name,
                EventKind.SCALED,
                f"scaled from {row.replicas} to {replicas}",
                revision=row.revision,
                now=now,
            )
        return ServiceRecord(name, row.revision, replicas, row.stopped, row.created_at, now)

    def set_stopped(self, name: str, stopped: bool) -> ServiceRecord:
        """Stop (keep the desired count, run none) or start a service; no-op when already so."""
        with self._write() as conn:
            row = _fetch_service(conn, name, lock=True)
            if row.stopped == stopped:
                return service_record(row)
            now = self._clock()
            conn.execute(
                services.update()
                .where(services.c.name == name)
                .values(stopped=stopped, updated_at=now)
            )
            if stopped:
                kind, message = (
                    EventKind.STOPPED,
                    f"stopped; {row.replicas} replica(s) kept as desired",
                )
            else:
                kind, message = EventKind.STARTED, f"started with {row.replicas} replica(s)"
            self._event(conn, name, kind, message, revision=row.revision, now=now)
        return ServiceRecord(name, row.revision, row.replicas, stopped, row.created_at, now)

    def delete_service(self, name: str) -> None:
        """Remove a service with its revisions and replicas; its events stay, plus DELETED."""
        with self._write() as conn:
            row = _fetch_service(conn, name, lock=True)
            conn.execute(replicas.delete().where(replicas.c.service == name))
            conn.execute(revisions.delete().where(revisions.c.service == name))
            conn.execute(services.delete().where(services.c.name == name))
            self._event(
                conn,
                name,
                EventKind.DELETED,
                f"deleted at revision {row.revision}",
                revision=row.revision,
            )

    # -- revisions --------------------------------------------------------------------

    def get_revision(self, name: str, number: int) -> RevisionRecord:
        """Revision ``number`` of a service; NotFound names what is missing."""
        query = sa.select(revisions).where(
            revisions.c.service == name, revisions.c.number == number
        )
        with self._read() as conn:
            # A number past int64 names no revision, and must not reach the driver.
            row = conn.execute(query).first() if 0 < number <= INT64_MAX else None
            if row is None:
                current = _fetch_service(conn, name).revision
                raise NotFound(
                    f"service {name!r} has no revision {number}; its revisions are 1 to {current}"
                )
        return revision_record(row)

    def list_revisions(self, name: str) -> list[RevisionRecord]:
        """Every revision of a service, oldest first."""
        with self._read() as conn:
            _fetch_service(conn, name)
            rows = conn.execute(
                sa.select(revisions).where(revisions.c.service == name).order_by(revisions.c.number)
            ).all()
        return [revision_record(row) for row in rows]

    # -- replicas ---------------------------------------------------------------------

    def list_replicas(self, service: str | None = None) -> list[ReplicaRecord]:
        """Every replica (or one service's), by service then id."""
        query = sa.select(replicas).order_by(replicas.c.service, replicas.c.id)
        if service is not None:
            query = query.where(replicas.c.service == service)
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [replica_record(row) for row in rows]

    def sync_replicas(self, service_records: Iterable[ReplicaRecord]) -> None:
        """Make the replica table exactly these records, skipping ones of unknown services."""
        wanted = {r.id: r for r in service_records}  # the last record of an id wins
        with self._write() as conn:
            names = set(conn.execute(sa.select(services.c.name)).scalars())
            conn.execute(replicas.delete())
            rows = [replica_row(r) for r in wanted.values() if r.service in names]
            if rows:
                conn.execute(replicas.insert(), rows)

    # -- events -----------------------------------------------------------------------

    def add_event(
        self,
        service: str,
        kind: EventKind,
        message: str,
        revision: int | None = None,
        replica: str | None = None,
    ) -> EventRecord:
        """Record an event; the service need not exist (events outlive services)."""
        with self._write() as conn:
            return self._event(conn, service, kind, message, revision=revision, replica=replica)

    def list_events(self, service: str, limit: int = 100, after: int = 0) -> list[EventRecord]:
        """The newest ``limit`` events of a service with ids above ``after``, oldest first."""
        if limit < 0:
            raise InvalidInput(f"limit must be 0 or more, not {limit}")
        if after >= INT64_MAX:
            return []  # no id is larger
        query = (
            sa.select(events)
            .where(events.c.service == service, events.c.id > after)
            .order_by(events.c.id.desc())
            .limit(limit)
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [event_record(row) for row in reversed(rows)]

    # -- plumbing ---------------------------------------------------------------------

    def _event(
        self,
        conn: sa.Connection,
        service: str,
        kind: EventKind,
        message: str,
        *,
        revision: int | None = None,
        replica: str | None = None,
        now: float | None = None,
    ) -> EventRecord:
        if conn.dialect.name == "postgresql":
            # Sequence ids are handed out before commit; serialising a service's event
            # writes makes its ids commit in order, so an `after` cursor never skips one.
            conn.execute(
                sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext("pier.events:" + service)))
            )
        now = self._clock() if now is None else now
        result = conn.execute(
            events.insert().values(
                service=service,
                kind=kind.value,
                message=message,
                revision=revision,
                replica=replica,
                time=now,
            )
        )
        key = result.inserted_primary_key
        assert key is not None
        return EventRecord(int(key[0]), service, kind, message, now, revision, replica)

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        """A transaction for reads: one consistent snapshot across its queries."""
        with (
            translate_errors(self.database, self._secrets),
            self._engine.connect() as conn,
            conn.begin(),
        ):
            yield conn

    @contextmanager
    def _write(
        self, *, conflict: PierError | None = None, missing: PierError | None = None
    ) -> Iterator[sa.Connection]:
        """A transaction that will write; SQLite takes its write lock at BEGIN."""
        errors = translate_errors(self.database, self._secrets, conflict=conflict, missing=missing)
        with errors, self._engine.connect() as conn:
            conn.execution_options(**{WRITE: True})
            with conn.begin():
                yield conn


def _check_replicas(replicas: int) -> None:
    if (
        isinstance(replicas, bool)
        or not isinstance(replicas, int)
        or not 0 <= replicas <= INT64_MAX
    ):
        raise InvalidInput(f"replicas must be a whole number 0 or more, not {replicas!r}")


def _fetch_service(conn: sa.Connection, name: str, *, lock: bool = False) -> sa.Row[Any]:
    """The service's row (locked for this transaction on PostgreSQL); NotFound if absent."""
    query = sa.select(services).where(services.c.name == name)
    if lock:
        query = query.with_for_update()
    row = conn.execute(query).first()
    if row is None:
        names = conn.execute(sa.select(services.c.name)).scalars()
        hint = suggest(name, names) or "; `pier list` shows the services there are"
        raise NotFound(f"service {name!r} not found{hint}")
    return row
