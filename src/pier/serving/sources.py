"""Where a model repository's folders come from: a local folder, or object storage.

A source answers what the repository asks on every scan: which models, which versions,
what changed, and where a version's files are on this machine. Every method may block
(remote sources do network I/O): the repository calls them from worker threads.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Protocol

from pier.errors import StorageNotFound
from pier.serving.modelconfig import (
    CONFIG_FILENAMES,
    ModelConfig,
    find_config_file,
    load_config,
    parse_config_file,
)
from pier.storage import (
    Entry,
    ModelCache,
    StorageOptions,
    StorageURI,
    identity,
    list_dirs,
    ls,
    parse_uri,
    read_bytes,
)

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

    def release(self, model: str, version: int, keep_latest: bool = False) -> None:
        """Local copies of the version are no longer used (all, or all but the newest)."""
        ...


def is_model_name(name: str) -> bool:
    """Hidden and underscore-prefixed folders are not models."""
    return bool(name) and not name.startswith((".", "_"))


def version_numbers(names: list[str]) -> list[int]:
    """Positive integer folder names, ascending; anything else is ignored."""
    # isascii: "²".isdigit() is true too, and int("²") raises
    return sorted(int(n) for n in names if n.isascii() and n.isdigit() and int(n) > 0)


def config_file_stamp(folder: Path) -> Stamp:
    """Name, size and mtime of the folder's config file; empty when it has none."""
    path = find_config_file(folder)
    if path is None:
        return ()
    try:
        st = path.stat()
    except OSError:
        return ()
    return ((path.name, st.st_size, str(st.st_mtime_ns)),)


def files_stamp(root: Path, limit: int = 10_000, skip: frozenset[str] = frozenset()) -> Stamp:
    """Relative path, size and mtime of every file under ``root`` (or of ``root``, a file)."""
    candidates = [root] if root.is_file() else sorted(root.rglob("*"))
    items: list[tuple[str, int, str]] = []
    for p in candidates:
        if len(items) >= limit:
            break
        try:
            if p.is_file() and p.name not in skip:
                st = p.stat()
                name = p.name if p == root else str(p.relative_to(root))
                items.append((name, st.st_size, str(st.st_mtime_ns)))
        except OSError:
            continue
    return tuple(items)


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
        return config_file_stamp(self.root / model)

    def load_config(self, model: str) -> ModelConfig:
        return load_config(self.root / model)

    def version_stamp(self, model: str, version: int, limit: int = 10_000) -> Stamp:
        return files_stamp(self.root / model / str(version), limit)

    def materialize(self, model: str, version: int) -> Path:
        return self.root / model / str(version)

    def release(self, model: str, version: int, keep_latest: bool = False) -> None:
        """Nothing to release: the files are the repository itself."""


class RemoteSource:
    """A model repository in object storage (s3, gs, oss, hdfs, http), read through the cache.

    Listing and fingerprints are remote calls that download nothing; a version's files
    are fetched into the shared cache when it loads and held until it unloads.
    """

    def __init__(self, root: StorageURI, options: StorageOptions, cache: ModelCache) -> None:
        self.root = root
        self.options = options
        self.cache = cache
        self.description = str(root)  # str() of a StorageURI hides credentials
        self._held: dict[tuple[str, int], list[Path]] = {}

    def model_names(self) -> list[str]:
        return sorted(n for n in list_dirs(self.root, self.options) if is_model_name(n))

    def versions(self, model: str) -> list[int]:
        try:
            return version_numbers(list_dirs(self.root.join(model), self.options))
        except StorageNotFound:
            return []

    def _config_entry(self, model: str) -> Entry | None:
        try:
            entries = ls(self.root.join(model), self.options)
        except StorageNotFound:
            return None
        by_name = {e.name: e for e in entries if not e.is_dir}
        for name in CONFIG_FILENAMES:
            if name in by_name:
                return by_name[name]
        return None

    def config_stamp(self, model: str) -> Stamp:
        entry = self._config_entry(model)
        if entry is None:
            return ()
        return ((entry.name, entry.size or 0, str(entry.modified)),)

    def load_config(self, model: str) -> ModelConfig:
        entry = self._config_entry(model)
        if entry is None:
            return ModelConfig()
        uri = self.root.join(model, entry.name)
        raw = read_bytes(uri, self.options)
        if raw is None:  # removed between the listing and the read: the next scan sees it
            return ModelConfig()
        return parse_config_file(raw, entry.name, str(uri))

    def version_stamp(self, model: str, version: int) -> Stamp:
        return (("", 0, identity(self.root.join(model, str(version)), self.options)),)

    def materialize(self, model: str, version: int) -> Path:
        path = self.cache.fetch(self.root.join(model, str(version)), self.options)
        self._held.setdefault((model, version), []).append(path)
        return path

    def release(self, model: str, version: int, keep_latest: bool = False) -> None:
        held = self._held.pop((model, version), [])
        if keep_latest and held:
            self._held[(model, version)] = [held.pop()]
        for path in held:
            self.cache.release(path)


def open_source(
    location: str, cache_dir: Path, cache_size: int, storage: StorageOptions
) -> RepositorySource:
    """A local folder for paths and ``file://``; object storage for every other scheme."""
    uri = parse_uri(location)
    if uri.is_local:
        return LocalSource(Path(uri.path))
    return RemoteSource(uri, storage, ModelCache(cache_dir, cache_size))
