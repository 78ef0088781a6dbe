"""The Pier home folder (``--home``, ``PIER_HOME`` or ``~/.pier``): store, token, addresses, replicas.

Layout::

    pier.db            SQLite store (unless a PostgreSQL URL is given)
    token              the admin token, owner-only (0600)
    address.json       {"api": URL, "gateway": URL, "pid": N} of the running `pier up`
    up.lock            held by the running `pier up`: one control plane per home
    replicas/<id>/     per replica: replica.json (pid, port, ...), replica.log, model-config.json
    cache/             models fetched from remote URIs
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pier.errors import ConfigError


def default_home() -> Path:
    """``PIER_HOME`` when set, else ``~/.pier``."""
    env = os.environ.get("PIER_HOME")
    return Path(env).expanduser() if env else Path.home() / ".pier"


@dataclass(frozen=True)
class PierHome:
    """Paths under one home folder, and the small files kept there."""

    root: Path

    @property
    def db_path(self) -> Path:
        return self.root / "pier.db"

    @property
    def db_url(self) -> str:
        return f"sqlite:///{self.db_path}"

    @property
    def token_path(self) -> Path:
        return self.root / "token"

    @property
    def address_path(self) -> Path:
        return self.root / "address.json"

    @property
    def lock_path(self) -> Path:
        return self.root / "up.lock"

    @property
    def replicas_dir(self) -> Path:
        return self.root / "replicas"

    @property
    def cache_dir(self) -> Path:
        return self.root / "cache"

    def ensure(self) -> None:
        """Create the folder tree (owner-only at the top)."""
        self.root.mkdir(parents=True, exist_ok=True)
        os.chmod(self.root, 0o700)
        self.replicas_dir.mkdir(exist_ok=True)
        self.cache_dir.mkdir(exist_ok=True)

    def ensure_token(self) -> tuple[str, bool]:
        """The admin token, generated on first use; the flag says whether it is new."""
        if self.token_path.exists():
            return self.read_token(), False
        token = secrets.token_urlsafe(32)
        fd = os.open(self.token_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        return token, True

    def read_token(self) -> str:
        try:
            token = self.token_path.read_text().strip()
        except OSError as exc:
            raise ConfigError(
                f"no admin token in {self.token_path} ({exc.strerror}); "
                "run `pier up` first, or set PIER_TOKEN"
            ) from None
        if not token:
            raise ConfigError(f"{self.token_path} is empty; delete it and run `pier up` again")
        return token

    def write_address(self, api: str, gateway: str) -> None:
        data = {"api": api, "gateway": gateway, "pid": os.getpid()}
        tmp = self.address_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.address_path)

    def read_address(self) -> dict[str, Any]:
        """What the running `pier up` wrote; ConfigError when none is running here."""
        try:
            data = json.loads(self.address_path.read_text())
        except (OSError, ValueError):
            raise ConfigError(
                f"no running `pier up` found in {self.root}; start one with `pier up` "
                "(or point PIER_API and PIER_TOKEN at a remote one)"
            ) from None
        if not isinstance(data, dict) or "api" not in data:
            raise ConfigError(f"{self.address_path} is malformed; restart `pier up`")
        return data

    def clear_address(self) -> None:
        self.address_path.unlink(missing_ok=True)
