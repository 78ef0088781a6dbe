"""The store's tables as the code uses them today, and how records map onto their rows.

``store_migrations`` builds this shape step by step; a test checks that a migrated database
has exactly these columns, so the two cannot drift apart unnoticed. JSON (specs, replica
extras) is kept as text: it is only ever stored and returned, never queried.
"""

from __future__ import annotations

from typing import Any

import orjson
import sqlalchemy as sa

from pier.control.records import (
    EventKind,
    EventRecord,
    ReplicaRecord,
    ReplicaState,
    RevisionRecord,
    ServiceRecord,
)
from pier.errors import InvalidInput

metadata = sa.MetaData()

# Event ids are the cursor of `pier events --follow`; SQLite's AUTOINCREMENT (rather than a
# plain rowid) guarantees they never go back, and BIGINT leaves PostgreSQL room to grow.
EVENT_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("version", sa.Integer, nullable=False),
)

services = sa.Table(
    "services",
    metadata,
    sa.Column("name", sa.String(253), primary_key=True),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("replicas", sa.Integer, nullable=False),
    sa.Column("stopped", sa.Boolean, nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
)

revisions = sa.Table(
    "revisions",
    metadata,
    sa.Column(
        "service",
        sa.String(253),
        sa.ForeignKey("services.name", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("spec", sa.Text, nullable=False),  # JSON text: never queried, only returned
    sa.Column("created_at", sa.Double, nullable=False),
)

replicas = sa.Table(
    "replicas",
    metadata,
    sa.Column("id", sa.String(253), primary_key=True),
    sa.Column(
        "service",
        sa.String(253),
        sa.ForeignKey("services.name", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("revision", sa.Integer, nullable=False),
    sa.Column("state", sa.String(32), nullable=False),
    sa.Column("address", sa.String(255), nullable=False),
    sa.Column("pid", sa.Integer, nullable=True),
    sa.Column("restarts", sa.Integer, nullable=False),
    sa.Column("exit_code", sa.Integer, nullable=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("limits", sa.Text, nullable=False),
    sa.Column("started_at", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
    sa.Column("extra", sa.Text, nullable=False),  # JSON text
    sa.Index("replicas_by_service", "service"),
)

# No foreign key to services: a deleted service's events stay, so its history can be read.
events = sa.Table(
    "events",
    metadata,
    sa.Column("id", EVENT_ID, primary_key=True, autoincrement=True),
    sa.Column("service", sa.String(253), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("revision", sa.Integer, nullable=True),
    sa.Column("replica", sa.String(253), nullable=True),
    sa.Column("time", sa.Double, nullable=False),
    sa.Index("events_by_service", "service", "id"),
    sqlite_autoincrement=True,
)


def dump_json(value: dict[str, Any], what: str) -> str:
    if not isinstance(value, dict):
        raise InvalidInput(f"{what} must be a JSON object, not {type(value).__name__}")
    try:
        return orjson.dumps(value).decode()
    except TypeError as exc:
        raise InvalidInput(f"{what} cannot be stored as JSON: {exc}") from None


def service_record(row: sa.Row[Any]) -> ServiceRecord:
    return ServiceRecord(
        name=row.name,
        revision=row.revision,
        replicas=row.replicas,
        stopped=bool(row.stopped),
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def revision_record(row: sa.Row[Any]) -> RevisionRecord:
    return RevisionRecord(row.service, row.number, orjson.loads(row.spec), row.created_at)


def replica_row(record: ReplicaRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "service": record.service,
        "revision": record.revision,
        "state": ReplicaState(record.state).value,
        "address": record.address,
        "pid": record.pid,
        "restarts": record.restarts,
        "exit_code": record.exit_code,
        "reason": record.reason,
        "limits": record.limits,
        "started_at": record.started_at,
        "updated_at": record.updated_at,
        "extra": dump_json(record.extra, "replica extra"),
    }


def replica_record(row: sa.Row[Any]) -> ReplicaRecord:
    return ReplicaRecord(
        id=row.id,
        service=row.service,
        revision=row.revision,
        state=ReplicaState(row.state),
        address=row.address,
        pid=row.pid,
        restarts=row.restarts,
        exit_code=row.exit_code,
        reason=row.reason,
        limits=row.limits,
        started_at=row.started_at,
        updated_at=row.updated_at,
        extra=orjson.loads(row.extra),
    )


def event_record(row: sa.Row[Any]) -> EventRecord:
    return EventRecord(
        id=row.id,
        service=row.service,
        kind=EventKind(row.kind),
        message=row.message,
        time=row.time,
        revision=row.revision,
        replica=row.replica,
    )
