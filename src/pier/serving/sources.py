"""Where a model repository's folders come from: a local folder, or object storage.

A source answers what the repository asks on every scan: which models, which versions,
what changed, and where a version's files are on this machine. Every method may block
(remote sources do network I/O): the repository calls them from worker threads.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

from pier.serving.modelconfig import ModelConfig, find_config_file, load_config

log = logging.getLogger(__name__)

#: something that changes when the files behind it change (names, sizes, mtimes or etags)
Stamp = tuple[tuple[str, int, str], ...]


class RepositorySource(Protocol):
    """What the model repository needs from the place its models live."""

    #: shown in logs and errors; never carries credentials
    description: str

    def model_names(self) -> list[str]: ...

    def versions(self, model: str) -> list[int]: ...

    def config_stamp(self, model: str) -> Stamp: ...

    def load_config(self, model: str) -> ModelConfig: ...

    def version_stamp(self, model: str, version: int) -> Stamp: ...

    def materialize(self, model: str, version: int) -> Path:
        """A local folder holding the version's files (downloaded first if remote)."""
        ...


def is_model_name(name: str) -> bool:
    """Hidden and underscore-prefixed folders are not models."""
    return bool(name) and not name.startswith((".", "_"))


def version_numbers(names: list[str]) -> list[int]:
    """Positive integer folder names, ascending; anything else is ignored."""
    return sorted(int(n) for n in names if n.isdigit() and int(n) > 0)


class LocalSource:
    """A model repository in a local folder."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.description = str(root)

    def model_names(self) -> list[str]:
        try:
            return sorted(
                p.name for p in self.root.iterdir() if p.is_dir() and is_model_name(p.name)
            )
        except OSError as exc:
            log.error("cannot read the model repository %s: %s", self.root, exc)
            return []

    def versions(self, model: str) -> list[int]:
        try:
            return version_numbers([p.name for p in (self.root / model).iterdir() if p.is_dir()])
        except OSError:
            return []

    def config_stamp(self, model: str) -> Stamp:
        path = find_config_file(self.root / model)
        if path is None:
            return ()
        try:
            st = path.stat()
        except OSError:
            return ()
        return ((path.name, st.st_size, str(st.st_mtime_ns)),)

    def load_config(self, model: str) -> ModelConfig:
        return load_config(self.root / model)

    def version_stamp(self, model: str, version: int, limit: int = 10_000) -> Stamp:
        folder = self.root / model / str(version)
        items: list[tuple[str, int, str]] = []
        for p in sorted(folder.rglob("*")):
            if len(items) >= limit:
                break
            try:
                if p.is_file():
                    st = p.stat()
                    items.append((str(p.relative_to(folder)), st.st_size, str(st.st_mtime_ns)))
            except OSError:
                continue
        return tuple(items)

    def materialize(self, model: str, version: int) -> Path:
        return self.root / model / str(version)
