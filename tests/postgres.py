"""A real, throwaway PostgreSQL server for the tests: initdb into a temp folder, then run it.

    missing = postgres_missing()       # None, or why no server can be started here
    server = PostgresServer.start()    # 127.0.0.1 on a free port, trust auth, fsync off
    url = server.create_database()     # a fresh empty database: postgresql://pier@.../pier_N
    server.stop()                      # stop it and remove its folder

PostgreSQL refuses to run as root, so under root the data folder belongs to the
``postgres`` user and the server runs as that user.
"""

from __future__ import annotations

import glob
import itertools
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tests.integration.server import free_port

USER = "pier"  # the superuser initdb creates; trust auth, so no password
_SEARCH = ["/usr/local/bin", *sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)]


def _find(program: str) -> str | None:
    found = shutil.which(program)
    if found:
        return found
    for folder in _SEARCH:
        candidate = Path(folder) / program
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def postgres_missing() -> str | None:
    """Why a server cannot be started here (missing binaries), or None when it can."""
    absent = [p for p in ("initdb", "postgres") if _find(p) is None]
    if absent:
        return f"PostgreSQL binaries not found ({', '.join(absent)} not on PATH nor in {_SEARCH})"
    return None


class PostgresServer:
    """One ``postgres`` process over a data folder of its own."""

    def __init__(self, root: Path, port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.root = root
        self.port = port
        self.proc = proc
        self.log = log
        self._names = itertools.count(1)

    @classmethod
    def start(cls, timeout: float = 60.0) -> PostgresServer:
        """initdb a temp folder and start a server on it; raise with its log if it fails."""
        missing = postgres_missing()
        if missing:
            raise RuntimeError(missing)
        initdb, postgres = _find("initdb"), _find("postgres")
        assert initdb and postgres
        # Under /tmp itself, not pytest's tmp_path: that lies in a root-only (0700) folder
        # the postgres user could not enter.
        root = Path(tempfile.mkdtemp(prefix="pier-pg-"))
        data, sockets, log = root / "data", root / "sockets", root / "postgres.log"
        sockets.mkdir()
        user: str | None = None
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                shutil.rmtree(root, ignore_errors=True)
                raise RuntimeError(
                    "running as root, and PostgreSQL refuses root: create a `postgres` user"
                ) from None
            user = "postgres"
            for path in (root, sockets):
                os.chown(path, account.pw_uid, account.pw_gid)
        init = subprocess.run(
            [initdb, "-D", str(data), "-U", USER, "-A", "trust", "-E", "UTF8", "--no-sync"],
            user=user,
            capture_output=True,
            text=True,
            check=False,
        )
        if init.returncode != 0:
            shutil.rmtree(root, ignore_errors=True)
            raise RuntimeError(f"initdb failed ({init.returncode}):\n{init.stdout}{init.stderr}")
        port = free_port()
        log_file = log.open("wb")
        proc = subprocess.Popen(
            [
                postgres, "-D", str(data), "-h", "127.0.0.1", "-p", str(port),
                "-k", str(sockets), "-c", "fsync=off", "-c", "synchronous_commit=off",
                "-c", "full_page_writes=off", "-c", "max_connections=200",
            ],
            user=user,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        log_file.close()
        server = cls(root, port, proc, log)
        server._wait_ready(timeout)
        return server

    def url(self, database: str = "postgres", password: str | None = None) -> str:
        """A SQLAlchemy URL for ``database`` on this server (the password is ignored: trust)."""
        auth = f"{USER}:{password}" if password else USER
        return f"postgresql://{auth}@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        """A new empty database; its URL."""
        name = f"pier_{next(self._names)}"
        self.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def execute(self, sql: str) -> None:
        """Run one statement in autocommit mode (CREATE DATABASE needs that)."""
        import psycopg

        with psycopg.connect(self._dsn("postgres"), autocommit=True) as conn:
            conn.execute(sql.encode())

    def stop(self) -> None:
        """Fast shutdown (SIGINT: roll back clients, exit), then remove the folder."""
        if self.proc.poll() is None:
            self.proc.send_signal(2)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def _dsn(self, database: str) -> str:
        return f"host=127.0.0.1 port={self.port} user={USER} dbname={database} connect_timeout=2"

    def _wait_ready(self, timeout: float) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                text = self.log.read_text(errors="replace")
                shutil.rmtree(self.root, ignore_errors=True)
                raise RuntimeError(f"postgres exited with {self.proc.returncode}:\n{text}")
            try:
                with psycopg.connect(self._dsn("postgres")):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    text = self.log.read_text(errors="replace")
                    self.stop()
                    raise RuntimeError(f"postgres not ready after {timeout}s:\n{text}") from None
                time.sleep(0.1)
