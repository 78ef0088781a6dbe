"""The local model cache: download a URI once, atomically, share it, evict the least recently used.

Layout under ``root`` (one cache may be shared by every process on the machine)::

    <key>/meta.json   what the entry holds (URI redacted, identity, size, path)
    <key>/last_used   its mtime is the entry's last use, for LRU eviction
    <key>/data/...    the file, the folder, or the extracted archive
    .tmp/  .trash/    downloads in progress and entries being deleted
    .locks/           per key: ``<key>.lock`` (fetch/evict) and ``<key>.use`` (holds,
                      see ``pier.storage.holds``); ``cache.lock`` for eviction

The key hashes the URI, the endpoint and the remote identity (etag, mtime and size of
every object), so a changed object gets a new key and a fresh download; the stale entry
is removed once no process holds it. A download goes to ``.tmp`` and is renamed into
place, under the key's file lock: concurrent fetches of one model, from threads or
processes, download it once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from pier.errors import StorageNotFound, StorageUnavailable
from pier.storage.archive import archive_stem, extract, is_archive
from pier.storage.backends import open_filesystem
from pier.storage.holds import Holds
from pier.storage.integrity import verify_file
from pier.storage.options import StorageOptions
from pier.storage.progress import Progress
from pier.storage.remote import URI, RemoteObject, Tree, tree
from pier.storage.translate import storage_errors
from pier.storage.uri import StorageURI, as_uri

log = logging.getLogger(__name__)

META = "meta.json"
LAST_USED = "last_used"


@dataclass(frozen=True)
class CacheEntry:
    """One cached download, as ``ModelCache.entries`` reports it."""

    key: str
    uri: str  # redacted
    source: str  # hash of the URI and endpoint: versions of one model share it
    path: Path  # what ``fetch`` returned for it
    size: int
    last_used: float
    held: bool


class ModelCache:
    """Downloads model URIs into ``root``, at most ``max_bytes`` of them not in use.

    ``fetch`` returns a local path and *holds* the entry for this process until
    ``release`` (or the process ends): no process evicts a held entry. Local paths and
    ``file://`` URIs are returned as they are, never copied. Thread-safe and
    process-safe; every method blocks (run it off the event loop).

    ``verify`` checks each download against the checksum the store publishes (S3 and
    OSS single-part ETags, GCS ``md5Hash``, HTTP ``Content-MD5``); turn it off for
    buckets whose ETags are not MD5s (S3 SSE-KMS). An archive may expand to at most
    ``max_archive_bytes`` (default: ``max_bytes``).
    """

    def __init__(
        self,
        root: Path,
        max_bytes: int,
        *,
        verify: bool = True,
        max_archive_bytes: int | None = None,
        workers: int = 8,
    ) -> None:
        self.root = Path(root).absolute()
        self.max_bytes = max_bytes
        self.verify = verify
        self.max_archive_bytes = max_archive_bytes if max_archive_bytes is not None else max_bytes
        self.workers = workers
        for sub in (".tmp", ".trash", ".locks"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self._holds = Holds(self.root / ".locks")

    # -- public -----------------------------------------------------------------

    def fetch(
        self, uri: URI, options: StorageOptions | None = None, *, progress: bool = False
    ) -> Path:
        """A local path with the content of ``uri``: a file, a folder, or an extracted archive.

        Downloads only if no entry has the current remote identity. If the store cannot
        be reached, the newest cached copy of the same URI is used (with a warning).
        """
        uri = as_uri(uri)
        options = options if options is not None else StorageOptions()
        if uri.is_local:
            path = Path(uri.path)
            if not path.exists():
                raise StorageNotFound(f"{uri}: not found", uri=str(uri), cause="not found")
            return path
        source = self._source(uri, options)
        try:
            listing = tree(uri, options)
        except StorageUnavailable as exc:
            fallback = self._newest(source)
            if fallback is None:
                raise
            log.warning("%s; using the cached copy %s", exc.message, fallback)
            with self._key_lock(fallback):
                if (self.root / fallback / META).exists():
                    return self._hold(fallback)
            raise
        key = hashlib.sha256(f"{source}\n{listing.identity}".encode()).hexdigest()[:40]
        with self._key_lock(key):
            if not (self.root / key / META).exists():
                self._download(listing, options, key, source, progress)
            path = self._hold(key)
        self.evict(keep=key)
        return path

    def release(self, path: Path) -> None:
        """Stop holding the entry that ``path`` (as returned by ``fetch``) lies in."""
        key = self._key_of(path)
        if key is None:
            return  # a local path fetch returned as is
        self._touch(key)
        self._holds.release(key)

    @contextlib.contextmanager
    def using(
        self, uri: URI, options: StorageOptions | None = None, *, progress: bool = False
    ) -> Iterator[Path]:
        """``fetch`` for the length of a ``with`` block."""
        path = self.fetch(uri, options, progress=progress)
        try:
            yield path
        finally:
            self.release(path)

    def entries(self) -> list[CacheEntry]:
        """Complete entries, least recently used first."""
        out = []
        for key in self._keys():
            meta = self._meta(key)
            if meta is None:
                continue
            out.append(
                CacheEntry(
                    key=key,
                    uri=str(meta["uri"]),
                    source=str(meta["source"]),
                    path=self.root / key / str(meta["path"]),
                    size=int(meta["size"]),
                    last_used=self._last_used(key),
                    held=self._holds.in_use(key),
                )
            )
        return sorted(out, key=lambda e: e.last_used)

    def evict(self, keep: str = "") -> list[str]:
        """Remove stale entries and least recently used ones until under ``max_bytes``.

        Held entries, entries being fetched and ``keep`` stay. Returns the removed keys.
        """
        removed: list[str] = []
        with FileLock(self.root / ".locks" / "cache.lock"):
            for trash in (self.root / ".trash").iterdir():
                shutil.rmtree(trash, ignore_errors=True)
            entries = self.entries()
            total = sum(e.size for e in entries)
            # Older versions of the URI just fetched go whatever the budget: the store has
            # moved on. Then the least recently used, while over budget.
            current = (self._meta(keep) or {}).get("source") if keep else None
            for e in entries:
                if current and e.key != keep and e.source == current and self._remove(e.key):
                    removed.append(e.key)
                    total -= e.size
            for e in entries:
                if total <= self.max_bytes:
                    break
                if e.key != keep and e.key not in removed and self._remove(e.key):
                    removed.append(e.key)
                    total -= e.size
        if total > self.max_bytes:
            log.warning(
                "model cache %s holds %d bytes, over its %d-byte budget: the rest is in use",
                self.root,
                total,
                self.max_bytes,
            )
        return removed

    # -- download ---------------------------------------------------------------

    def _download(
        self, listing: Tree, options: StorageOptions, key: str, source: str, progress: bool
    ) -> None:
        uri = listing.uri
        for stale in (self.root / ".tmp").glob(f"{key}.*"):
            shutil.rmtree(stale, ignore_errors=True)  # left by a process that died mid-download
        tmp = self.root / ".tmp" / f"{key}.{uuid.uuid4().hex}"
        data = tmp / "data"
        try:
            single = listing.objects[0] if not listing.is_dir else None
            if single is not None and is_archive(single.relpath):
                archive = tmp / "archive" / single.relpath
                self._get(uri, options, [(single, archive)], progress)
                extract(archive, data, max_bytes=self.max_archive_bytes, label=str(uri))
                shutil.rmtree(archive.parent)
                rel = "data"
                kind = "archive"
                log.info("extracted %s (%s)", uri, archive_stem(single.relpath))
            else:
                pairs = [(o, data / o.relpath) for o in listing.objects]
                data.mkdir(parents=True)
                self._get(uri, options, pairs, progress)
                rel = f"data/{single.relpath}" if single is not None else "data"
                kind = "file" if single is not None else "folder"
            meta = {
                "uri": str(uri),
                "source": source,
                "identity": listing.identity,
                "kind": kind,
                "path": rel,
                "size": _du(data),
                "created": time.time(),
            }
            (tmp / LAST_USED).touch()
            (tmp / META).write_text(json.dumps(meta, indent=1))
            os.rename(tmp, self.root / key)
            log.info("cached %s (%d bytes) as %s", uri, meta["size"], key)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _get(
        self,
        uri: StorageURI,
        options: StorageOptions,
        pairs: list[tuple[RemoteObject, Path]],
        progress: bool,
    ) -> None:
        fs, _ = open_filesystem(uri, options)
        total = sum(o.size or 0 for o, _ in pairs)
        with Progress(total, f"download {uri.name}", enabled=progress) as bar:

            def one(pair: tuple[RemoteObject, Path]) -> None:
                obj, local = pair
                local.parent.mkdir(parents=True, exist_ok=True)
                with (
                    storage_errors(uri, options, f"downloading {obj.relpath}"),
                    bar.transfer(obj.size) as callback,
                ):
                    fs.get_file(obj.fs_path, str(local), callback=callback)
                verify_file(
                    local,
                    label=f"{uri} ({obj.relpath})" if obj.relpath != uri.name else str(uri),
                    md5=obj.md5 if self.verify else None,
                    size=obj.size,
                )

            if len(pairs) == 1:
                one(pairs[0])
                return
            with ThreadPoolExecutor(min(self.workers, len(pairs)), "pier-fetch") as pool:
                for _ in pool.map(one, pairs):
                    pass

    # -- holds, locks, metadata -------------------------------------------------

    def _hold(self, key: str) -> Path:
        """Mark ``key`` in use by this process (call with the key lock held)."""
        self._holds.acquire(key)
        self._touch(key)
        meta = self._meta(key)
        assert meta is not None
        return self.root / key / str(meta["path"])

    def _remove(self, key: str) -> bool:
        """Delete an entry unless it is held or locked; True if it went."""
        lock = FileLock(self.root / ".locks" / f"{key}.lock", timeout=0)
        try:
            lock.acquire()
        except Timeout:
            return False  # being fetched right now: in use
        try:
            if self._holds.in_use(key):
                return False
            self._holds.forget(key)
            # Rename first: no reader ever sees a half-deleted entry.
            trash = self.root / ".trash" / f"{key}.{uuid.uuid4().hex}"
            os.rename(self.root / key, trash)
        finally:
            lock.release()
        shutil.rmtree(trash, ignore_errors=True)
        log.info("evicted %s from the model cache", key)
        return True

    @contextlib.contextmanager
    def _key_lock(self, key: str) -> Iterator[None]:
        with FileLock(self.root / ".locks" / f"{key}.lock"):
            yield

    def _source(self, uri: StorageURI, options: StorageOptions) -> str:
        endpoint = options.redact(options.endpoint_url or "")
        return hashlib.sha256(f"{uri}\n{endpoint}".encode()).hexdigest()[:40]

    def _newest(self, source: str) -> str | None:
        candidates = [
            (float(m.get("created", 0)), key)
            for key in self._keys()
            if (m := self._meta(key)) is not None and m.get("source") == source
        ]
        return max(candidates)[1] if candidates else None

    def _keys(self) -> list[str]:
        return [p.name for p in self.root.iterdir() if not p.name.startswith(".")]

    def _key_of(self, path: Path) -> str | None:
        try:
            rel = Path(path).absolute().relative_to(self.root)
        except ValueError:
            return None
        return rel.parts[0] if rel.parts and not rel.parts[0].startswith(".") else None

    def _meta(self, key: str) -> dict[str, Any] | None:
        try:
            meta: dict[str, Any] = json.loads((self.root / key / META).read_text())
        except (OSError, ValueError):
            return None
        return meta

    def _touch(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.utime(self.root / key / LAST_USED)

    def _last_used(self, key: str) -> float:
        try:
            return (self.root / key / LAST_USED).stat().st_mtime
        except FileNotFoundError:
            return 0.0


def _du(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
