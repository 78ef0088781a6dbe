"""Remote reads a model repository needs: list folders, read a file, stat a tree, fingerprint it.

Every function here blocks on network I/O: call it from a thread (``asyncio.to_thread``)
when an event loop is running. Errors are Pier storage errors that name the URI.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from pier.errors import StorageError, StorageNotFound
from pier.storage.archive import safe_relpath
from pier.storage.backends import open_filesystem
from pier.storage.integrity import expected_md5
from pier.storage.options import StorageOptions
from pier.storage.translate import storage_errors
from pier.storage.uri import StorageURI, as_uri

URI = str | os.PathLike[str] | StorageURI

_MODIFIED_KEYS = ("LastModified", "mtime", "updated", "Last-Modified", "last_modified", "modified")
_ETAG_KEYS = ("ETag", "etag", "md5Hash", "Content-MD5")


@dataclass(frozen=True)
class Entry:
    """One line of ``ls``: a file or a folder directly under the listed URI."""

    name: str
    size: int | None
    modified: datetime | None
    is_dir: bool


@dataclass(frozen=True)
class RemoteObject:
    """One file of a tree, with what the store says about it."""

    relpath: str  # inside the listed folder; for a single file, its name
    fs_path: str  # as the backend names it
    size: int | None
    etag: str | None
    modified: str | None
    md5: str | None  # the checksum the store vouches for, hex, when there is one


@dataclass(frozen=True)
class Tree:
    """A file or a folder's files (recursively), as listed at one moment."""

    uri: StorageURI
    is_dir: bool
    objects: tuple[RemoteObject, ...]

    @property
    def identity(self) -> str:
        """A fingerprint that changes when any file is added, removed or changed."""
        digest = hashlib.sha256(b"dir\n" if self.is_dir else b"file\n")
        for o in sorted(self.objects, key=lambda o: o.relpath):
            digest.update(f"{o.relpath}\t{o.size}\t{o.etag}\t{o.modified}\n".encode())
        return digest.hexdigest()


def _options(options: StorageOptions | None) -> StorageOptions:
    return options if options is not None else StorageOptions()


def list_dirs(uri: URI, options: StorageOptions | None = None) -> list[str]:
    """Names of the folders directly under ``uri``, sorted; ``StorageNotFound`` if it is missing."""
    uri, options = as_uri(uri), _options(options)
    fs, path = open_filesystem(uri, options)
    with storage_errors(uri, options, "listing"):
        entries = fs.ls(path, detail=True)
    return sorted({_basename(e["name"]) for e in entries if e.get("type") == "directory"} - {""})


def ls(uri: URI, options: StorageOptions | None = None) -> list[Entry]:
    """Files and folders directly under ``uri`` (or the file itself), sorted by name."""
    uri, options = as_uri(uri), _options(options)
    fs, path = open_filesystem(uri, options)
    with storage_errors(uri, options, "listing"):
        info = fs.info(path)
        if info.get("type") == "directory":
            own = path.rstrip("/")
            entries = [e for e in fs.ls(path, detail=True) if e["name"].rstrip("/") != own]
        else:
            entries = [info]
    out = [
        Entry(
            name=_basename(e["name"]),
            size=None if e.get("type") == "directory" else _int(e.get("size")),
            modified=_modified(e),
            is_dir=e.get("type") == "directory",
        )
        for e in entries
    ]
    return sorted(out, key=lambda e: e.name)


def read_bytes(uri: URI, options: StorageOptions | None = None) -> bytes | None:
    """The content of the file at ``uri``, or None if there is none."""
    uri, options = as_uri(uri), _options(options)
    fs, path = open_filesystem(uri, options)
    try:
        with storage_errors(uri, options, "reading"):
            data = fs.cat_file(path)
    except StorageNotFound:
        return None
    return bytes(data)


def exists(uri: URI, options: StorageOptions | None = None) -> bool:
    """Whether a file or folder exists at ``uri``; unreachable stores raise, never say False."""
    uri, options = as_uri(uri), _options(options)
    fs, path = open_filesystem(uri, options)
    try:
        with storage_errors(uri, options, "checking"):
            fs.info(path)
    except StorageNotFound:
        return False
    return True


def tree(uri: URI, options: StorageOptions | None = None) -> Tree:
    """List the file at ``uri``, or every file below the folder at ``uri``, with etags and sizes."""
    uri, options = as_uri(uri), _options(options)
    fs, path = open_filesystem(uri, options)
    with storage_errors(uri, options, "listing"):
        info = fs.info(path)
        if info.get("type") != "directory":
            name = uri.name or "download"
            return Tree(uri, False, (_object(uri, name, path, info),))
        found: Mapping[str, Any] = fs.find(path, detail=True, withdirs=False)
    root = path.rstrip("/") + "/"
    objects = []
    for name, item in found.items():
        if item.get("type") == "directory" or not name.startswith(root):
            continue
        objects.append(_object(uri, name[len(root) :], name, item))
    return Tree(uri, True, tuple(objects))


def identity(uri: URI, options: StorageOptions | None = None) -> str:
    """A cheap fingerprint of the file or folder at ``uri`` (a listing, no download).

    It changes when a file is added, removed or rewritten (etag, mtime or size), so a
    poller can compare it with the last one it saw.
    """
    return tree(uri, options).identity


def _object(uri: StorageURI, rel: str, fs_path: str, info: Mapping[str, Any]) -> RemoteObject:
    clean = safe_relpath(rel)
    if clean is None:
        raise StorageError(
            f"{uri}: refusing object {rel!r}: its name is absolute or climbs out with '..'",
            uri=str(uri),
            cause="unsafe object name",
        )
    etag = next((str(info[k]) for k in _ETAG_KEYS if info.get(k)), None)
    modified = next((str(info[k]) for k in _MODIFIED_KEYS if info.get(k)), None)
    return RemoteObject(
        relpath=clean,
        fs_path=fs_path,
        size=_int(info.get("size")),
        etag=etag,
        modified=modified,
        md5=expected_md5(uri.scheme, info),
    )


def _basename(name: str) -> str:
    return posixpath.basename(name.rstrip("/"))


def _int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) else None


def _modified(info: Mapping[str, Any]) -> datetime | None:
    for key in _MODIFIED_KEYS:
        value = info.get(key)
        if isinstance(value, datetime):
            return value if value.tzinfo else value.replace(tzinfo=UTC)
        if isinstance(value, int | float):
            return datetime.fromtimestamp(value, tz=UTC)
        if isinstance(value, str) and value:
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                pass
            try:
                return parsedate_to_datetime(value)
            except (TypeError, ValueError):
                pass
    return None
