"""Opening the store's database: URL to SQLAlchemy engine, SQLite settings, error translation.

SQLite gets WAL, a busy timeout, foreign keys and write transactions that take the lock at
BEGIN; PostgreSQL goes through psycopg 3 with a connect timeout. Whatever the driver raises
comes out as a Pier error that names the database with its password hidden.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from pier.errors import InvalidInput, PierError, StoreError, Unsupported

# Execution option that marks a connection's next transaction as one that will write.
WRITE = "pier_write"

_POSTGRES_DRIVERS = {"postgresql", "postgres", "postgresql+psycopg"}
_SQLITE_DRIVERS = {"sqlite", "sqlite+pysqlite"}
_USERINFO_PASSWORD = re.compile(r"(://[^:/@\s]*):[^@/\s]*@")


def parse_url(url: str) -> sa.URL:
    """The store URL with its driver chosen: ``sqlite`` or ``postgresql+psycopg``."""
    try:
        parsed = sa.make_url(url)
    except (sa_exc.ArgumentError, ValueError):
        raise InvalidInput(
            f"store URL {hide_password(url)!r} is not a database URL; use sqlite:///PATH or "
            "postgresql://USER:PASSWORD@HOST:PORT/DATABASE"
        ) from None
    if parsed.drivername in _SQLITE_DRIVERS:
        return parsed.set(drivername="sqlite")
    if parsed.drivername in _POSTGRES_DRIVERS:
        return parsed.set(drivername="postgresql+psycopg")
    raise InvalidInput(
        f"store URL {parsed.render_as_string(hide_password=True)} uses {parsed.drivername!r}; "
        "Pier stores in SQLite (sqlite:///PATH) or PostgreSQL (postgresql://...)"
    )


def hide_password(text: str) -> str:
    """``text`` with the password of any ``scheme://user:password@`` in it masked."""
    return _USERINFO_PASSWORD.sub(r"\1:***@", text)


def open_engine(url: sa.URL, *, busy_timeout: float, connect_timeout: int) -> sa.Engine:
    """A pooled engine for a URL from ``parse_url``; nothing connects yet."""
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, busy_timeout)
    if importlib.util.find_spec("psycopg") is None:
        raise Unsupported(
            "a PostgreSQL store needs the psycopg driver: pip install 'pier[postgres]'"
        )
    connect_args: dict[str, Any] = {"application_name": "pier"}
    if "connect_timeout" not in url.query:
        connect_args["connect_timeout"] = connect_timeout
    # pre_ping: a pooled connection left over from before a server restart is replaced
    # instead of failing the next request.
    return sa.create_engine(
        url, connect_args=connect_args, pool_pre_ping=True, pool_size=8, max_overflow=16
    )


def _sqlite_engine(url: sa.URL, busy_timeout: float) -> sa.Engine:
    shown = url.render_as_string(hide_password=True)
    path = url.database
    if not path or path == ":memory:" or path.startswith("file:"):
        raise InvalidInput(
            f"store URL {shown} names no file; use sqlite:///PATH "
            "(an in-memory database would be private to each connection)"
        )
    try:
        Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        cause = f"cannot create its folder ({exc.strerror})"
        raise StoreError(
            f"the store database {shown} is unavailable: {cause}", database=shown, cause=cause
        ) from None
    engine = sa.create_engine(
        url,
        connect_args={"timeout": busy_timeout, "check_same_thread": False},
        pool_size=8,
        max_overflow=16,
    )
    busy_ms = int(busy_timeout * 1000)

    def on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let the "begin" hook below issue BEGIN, instead of the sqlite3 module's
        # implicit one, so that writers can take the lock up front.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {busy_ms}")
        # WAL: readers neither block the writer nor wait for it.
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")  # in WAL, durable enough and much faster
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    def on_begin(conn: sa.Connection) -> None:
        # A deferred transaction that reads and then writes fails at once with
        # SQLITE_BUSY when another writer got in first (the busy timeout cannot help
        # it); BEGIN IMMEDIATE waits for the write lock before reading instead.
        write = conn.get_execution_options().get(WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    sa.event.listen(engine, "connect", on_connect)
    sa.event.listen(engine, "begin", on_begin)
    return engine


@contextmanager
def translate_errors(
    database: str,
    secrets: list[str],
    *,
    conflict: PierError | None = None,
    missing: PierError | None = None,
) -> Iterator[None]:
    """Re-raise SQLAlchemy and driver errors as Pier errors free of credentials.

    A unique-key violation becomes ``conflict`` and a foreign-key violation ``missing``
    when given (a race lost to another writer); anything else the database itself did
    wrong becomes StoreError (code "unavailable").
    """
    try:
        yield
    except sa_exc.IntegrityError as exc:
        if conflict is not None and _sqlstate(exc, "23505", "UNIQUE constraint failed"):
            raise conflict from None
        if missing is not None and _sqlstate(exc, "23503", "FOREIGN KEY constraint failed"):
            raise missing from None
        raise InvalidInput(f"the store refused the change: {_cause(exc, secrets)}") from None
    except (sa_exc.DBAPIError, sa_exc.TimeoutError) as exc:
        # `from None`: SQLAlchemy's own message carries the SQL and its parameters.
        cause = _cause(exc, secrets)
        raise StoreError(
            f"the store database {database} is unavailable: {cause}",
            database=database,
            cause=cause,
        ) from None


def _sqlstate(exc: sa_exc.IntegrityError, code: str, sqlite_text: str) -> bool:
    return getattr(exc.orig, "sqlstate", None) == code or sqlite_text in str(exc.orig)


def _cause(exc: Exception, secrets: list[str]) -> str:
    """The driver's own words, at most two lines, with any password masked."""
    original = getattr(exc, "orig", None) or exc
    lines = [line.strip() for line in str(original).splitlines() if line.strip()]
    cause = "; ".join(lines[:2]) or type(original).__name__
    for secret in secrets:
        cause = cause.replace(secret, "***")
    return hide_password(cause)
