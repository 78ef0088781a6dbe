"""Upload a local model folder to a storage URI, skipping files already there (like ``s3cmd sync``)."""

from __future__ import annotations

import logging
import os
import posixpath
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pier.errors import StorageConfigError, StorageNotFound
from pier.storage.backends import open_filesystem
from pier.storage.integrity import md5_file
from pier.storage.options import StorageOptions
from pier.storage.progress import Progress
from pier.storage.remote import URI, RemoteObject, tree
from pier.storage.translate import storage_errors
from pier.storage.uri import StorageURI, as_uri

log = logging.getLogger(__name__)

# Object metadata key under which push records a file's MD5 on S3, where a multipart
# upload's ETag is not one.
MD5_METADATA = "pier-md5"


@dataclass(frozen=True)
class PushResult:
    """What ``push`` did: relative paths uploaded and skipped, and bytes sent."""

    uploaded: list[str]
    skipped: list[str]
    bytes_uploaded: int


def push(
    local: Path,
    uri: URI,
    options: StorageOptions | None = None,
    *,
    progress: bool = False,
    workers: int = 8,
    part_size: int | None = None,
) -> PushResult:
    """Upload the folder ``local`` to the folder ``uri`` (or a file to the object ``uri``).

    A file whose size and MD5 match the remote object is skipped. ``part_size`` sets the
    S3 multipart chunk size (default: the backend's, 50 MiB).
    """
    uri, options = as_uri(uri), options if options is not None else StorageOptions()
    local = Path(local)
    if uri.scheme in ("http", "https"):
        raise StorageConfigError(
            f"{uri}: cannot push to {uri.scheme}://: use s3, gs, oss, hdfs or a local path",
            uri=str(uri),
            cause="read-only scheme",
        )
    if local.is_file():
        files = {uri.name: local}
        target = StorageURI(uri.scheme, uri.netloc, posixpath.dirname(uri.path), uri.query)
        remote = _remote_files(uri, options, single=True)
    elif local.is_dir():
        files = {
            p.relative_to(local).as_posix(): p for p in sorted(local.rglob("*")) if p.is_file()
        }
        target = uri
        remote = _remote_files(uri, options, single=False)
    else:
        raise StorageNotFound(f"{local}: no such file or folder to push", uri=str(local))
    fs, root = open_filesystem(target, options)
    with storage_errors(uri, options, "comparing"):
        todo = [
            (rel, p) for rel, p in files.items() if not _same(fs, remote.get(rel), p, uri.scheme)
        ]
    sending = {rel for rel, _ in todo}
    skipped = [rel for rel in files if rel not in sending]
    total = sum(p.stat().st_size for _, p in todo)
    with Progress(total, f"push {uri.name or uri.netloc}", enabled=progress) as bar:

        def one(item: tuple[str, Path]) -> None:
            rel, path = item
            dest = f"{root.rstrip('/')}/{rel}" if root else rel
            kwargs: dict[str, Any] = {}
            if uri.scheme == "s3":
                kwargs["Metadata"] = {MD5_METADATA: md5_file(path)}
                if part_size:
                    kwargs["chunksize"] = part_size
            if uri.scheme == "file":
                os.makedirs(os.path.dirname(dest), exist_ok=True)
            with (
                storage_errors(uri, options, f"uploading {rel}"),
                bar.transfer(path.stat().st_size) as callback,
            ):
                fs.put_file(str(path), dest, callback=callback, **kwargs)

        with ThreadPoolExecutor(max(1, min(workers, len(todo))), "pier-push") as pool:
            for _ in pool.map(one, todo):
                pass
    log.info("pushed %d files (%d bytes) to %s, %d unchanged", len(todo), total, uri, len(skipped))
    return PushResult([rel for rel, _ in todo], skipped, total)


def _remote_files(
    uri: StorageURI, options: StorageOptions, *, single: bool
) -> dict[str, RemoteObject]:
    """What is already at the destination, by relative path."""
    try:
        listing = tree(uri, options)
    except StorageNotFound:
        return {}
    if listing.is_dir != (not single):
        return {}  # a folder where a file goes, or the reverse: upload over it
    return {uri.name if single else o.relpath: o for o in listing.objects}


def _same(fs: Any, remote: RemoteObject | None, path: Path, scheme: str) -> bool:
    """Whether the remote object already has the content of ``path``."""
    if remote is None or remote.size != path.stat().st_size:
        return False
    if remote.md5 is not None:
        return remote.md5 == md5_file(path)
    if scheme == "file":
        return md5_file(Path(remote.fs_path)) == md5_file(path)
    if scheme == "s3":  # a multipart upload: push recorded the MD5 in the metadata
        recorded = fs.metadata(remote.fs_path).get(MD5_METADATA)
        return bool(recorded == md5_file(path))
    return False
