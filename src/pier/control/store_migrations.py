"""Schema migrations: numbered steps that bring any older store database up to this code's.

Each step runs in its own transaction together with the bump of ``schema_version``, so a
crash leaves the database at a whole version. Steps are frozen history: they spell out their
own tables instead of reusing ``store_schema``, which describes only the latest shape.
A database whose version is newer than the last step is refused, never touched.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from pier.control.store_engine import WRITE
from pier.errors import FailedPrecondition

# Any fixed number: PostgreSQL advisory lock that keeps two starting control planes from
# migrating the same database at once.
_MIGRATION_LOCK = 0x70696572


@dataclass(frozen=True)
class Migration:
    """One step: ``apply`` takes the database from ``version - 1`` to ``version``."""

    version: int
    description: str
    apply: Callable[[sa.Connection], None]


def _v1_tables(conn: sa.Connection) -> None:
    """Services, revisions, replicas and events."""
    md = sa.MetaData()
    sa.Table(
        "services",
        md,
        sa.Column("name", sa.String(253), primary_key=True),
        sa.Column("revision", sa.Integer, nullable=False),
        sa.Column("replicas", sa.Integer, nullable=False),
        sa.Column("stopped", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
        sa.Column("updated_at", sa.Double, nullable=False),
    )
    sa.Table(
        "revisions",
        md,
        sa.Column(
            "service",
            sa.String(253),
            sa.ForeignKey("services.name", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("created_at", sa.Double, nullable=False),
    )
    sa.Table(
        "replicas",
        md,
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
        sa.Column("extra", sa.Text, nullable=False),
    )
    sa.Table(
        "events",
        md,
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            primary_key=True,
            autoincrement=True,
        ),
        sa.Column("service", sa.String(253), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("revision", sa.Integer, nullable=True),
        sa.Column("replica", sa.String(253), nullable=True),
        sa.Column("time", sa.Double, nullable=False),
        sqlite_autoincrement=True,
    )
    md.create_all(conn)


def _v2_indexes(conn: sa.Connection) -> None:
    """Indexes for the two lookups made on every request and loop: by service."""
    conn.exec_driver_sql("CREATE INDEX replicas_by_service ON replicas (service)")
    conn.exec_driver_sql("CREATE INDEX events_by_service ON events (service, id)")


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "services, revisions, replicas and events", _v1_tables),
    Migration(2, "indexes by service on replicas and events", _v2_indexes),
)
LATEST = MIGRATIONS[-1].version

_version_table = sa.Table(
    "schema_version", sa.MetaData(), sa.Column("version", sa.Integer, nullable=False)
)


def _lock_and_read(conn: sa.Connection) -> int:
    """The database's version under the migration lock; 0 for an empty database."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_MIGRATION_LOCK)))
    _version_table.create(conn, checkfirst=True)
    version = conn.execute(sa.select(_version_table.c.version)).scalar()
    if version is None:
        conn.execute(_version_table.insert().values(version=0))
        return 0
    return int(version)


def migrate(
    engine: sa.Engine, steps: Sequence[Migration] = MIGRATIONS, *, database: str = ""
) -> int:
    """Apply the steps the database lacks, each in one transaction; return its version."""
    for number, step in enumerate(steps, start=1):
        if step.version != number:
            raise ValueError(
                f"migration {step.description!r} is numbered {step.version}, not {number}"
            )
    latest = len(steps)
    while True:
        with engine.connect() as conn:
            conn.execution_options(**{WRITE: True})
            with conn.begin():
                version = _lock_and_read(conn)
                if version > latest:
                    where = f" {database}" if database else ""
                    raise FailedPrecondition(
                        f"the store database{where} is at schema version {version}, newer than "
                        f"this Pier knows (up to {latest}); upgrade Pier, or point it at "
                        "another database"
                    )
                if version == latest:
                    return version
                step = steps[version]
                step.apply(conn)
                conn.execute(_version_table.update().values(version=step.version))
