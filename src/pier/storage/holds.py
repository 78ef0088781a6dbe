"""Marks that a cache entry is in use, seen by every process on the machine: shared flocks.

A process holding an entry keeps a shared ``flock`` on the entry's use file; the evictor
asks for an exclusive one without waiting and leaves the entry alone if it cannot have
it. The kernel drops a dead process's locks, so a crash never pins an entry, and the
locks work across PID namespaces (containers sharing a cache volume on one node). On
platforms without ``fcntl`` holds are only seen inside the process.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


class Holds:
    """Per-process reference counts over shared locks on ``folder/<key>.use``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.Lock()
        self._held: dict[str, tuple[int, int]] = {}  # key -> (count, fd)

    def acquire(self, key: str) -> None:
        """Hold ``key`` once more (callers serialize this with the key's lock)."""
        with self._lock:
            count, fd = self._held.get(key, (0, -1))
            if count == 0:
                fd = os.open(self._path(key), os.O_RDWR | os.O_CREAT, 0o644)
                if fcntl is not None:
                    fcntl.flock(fd, fcntl.LOCK_SH)
            self._held[key] = (count + 1, fd)

    def release(self, key: str) -> None:
        """Drop one hold; the lock goes with the last one of this process."""
        with self._lock:
            count, fd = self._held.get(key, (0, -1))
            if count > 1:
                self._held[key] = (count - 1, fd)
                return
            self._held.pop(key, None)
        if fd >= 0:
            os.close(fd)  # closing releases the flock

    def in_use(self, key: str) -> bool:
        """Whether any process, this one included, holds ``key``."""
        with self._lock:
            if key in self._held:
                return True
        if fcntl is None or not self._path(key).exists():
            return False
        fd = os.open(self._path(key), os.O_RDWR)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def forget(self, key: str) -> None:
        """Remove the use file of an evicted entry (under the key's lock, unheld)."""
        self._path(key).unlink(missing_ok=True)

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.use"
