"""Storage URIs: parse ``s3://bucket/key``, ``gs://``, ``oss://``, ``hdfs://``, ``http(s)://``, local paths."""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit, urlunsplit

from pier.errors import StorageConfigError
from pier.storage.redact import redact

SCHEMES = ("file", "s3", "gs", "oss", "hdfs", "http", "https")
# Aliases that other tools write for the same stores.
_ALIASES = {"s3a": "s3", "s3n": "s3", "gcs": "gs", "viewfs": "hdfs", "local": "file"}


@dataclass(frozen=True)
class StorageURI:
    """A parsed storage location.

    ``netloc`` is the bucket for object stores, ``host[:port]`` for ``hdfs`` and
    ``http(s)``, and empty for local files. ``path`` has no leading slash for buckets
    and is absolute for ``file`` and ``hdfs``. ``query`` is kept for ``http(s)`` only.
    """

    scheme: str
    netloc: str
    path: str
    query: str = ""

    @property
    def bucket(self) -> str:
        """The bucket (object stores) or host (hdfs, http)."""
        return self.netloc

    @property
    def is_local(self) -> bool:
        return self.scheme == "file"

    @property
    def name(self) -> str:
        """The last path component: a file or folder name."""
        return posixpath.basename(self.path.rstrip("/"))

    @property
    def text(self) -> str:
        """The URI as text, credentials included: hand it to a backend, never to a log."""
        if self.scheme == "file":
            return "file://" + self.path
        if self.scheme in ("http", "https"):
            return urlunsplit((self.scheme, self.netloc, self.path, self.query, ""))
        path = self.path if self.scheme == "hdfs" else "/" + self.path
        return (
            f"{self.scheme}://{self.netloc}{path}"
            if self.path
            else f"{self.scheme}://{self.netloc}"
        )

    @property
    def fs_path(self) -> str:
        """The path as the fsspec backend for this scheme expects it."""
        if self.scheme in ("http", "https"):
            return self.text
        if self.scheme in ("file", "hdfs"):
            return self.path
        return f"{self.netloc}/{self.path}".rstrip("/")

    def join(self, *parts: str) -> StorageURI:
        """A URI below this one: ``uri.join("resnet", "1")``."""
        clean = [p.strip("/") for p in parts if p.strip("/")]
        for part in clean:
            if ".." in part.split("/"):
                raise StorageConfigError(
                    f"{self}: refusing to join {part!r}: '..' is not allowed",
                    uri=str(self),
                    cause="invalid_uri",
                )
        path = posixpath.join(self.path, *clean) if self.path else "/".join(clean)
        return StorageURI(self.scheme, self.netloc, path, self.query)

    def __str__(self) -> str:
        return redact(self.text)

    def __repr__(self) -> str:
        return f"StorageURI({str(self)!r})"


def parse_uri(text: str | os.PathLike[str]) -> StorageURI:
    """Parse a storage URI or a local path; raise ``StorageConfigError`` for anything else."""
    raw = os.fspath(text).strip()
    if not raw:
        raise _invalid(raw, "empty storage URI")
    if "://" not in raw:
        return StorageURI("file", "", os.path.abspath(os.path.expanduser(raw)))
    parts = urlsplit(raw)
    scheme = _ALIASES.get(parts.scheme.lower(), parts.scheme.lower())
    if scheme not in SCHEMES:
        supported = ", ".join(s + "://" for s in SCHEMES)
        raise _invalid(raw, f"unsupported storage scheme {parts.scheme!r}; supported: {supported}")
    if scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise _invalid(raw, "file:// URIs name a local path (file:///abs/path), not a host")
        return StorageURI("file", "", os.path.abspath(unquote(parts.path) or "/"))
    if scheme in ("http", "https"):
        if not parts.netloc:
            raise _invalid(raw, "no host in storage URI")
        return StorageURI(scheme, parts.netloc, parts.path or "/", parts.query)
    # Object keys are taken verbatim: '?' and '#' are legal in them.
    netloc, _, path = raw.split("://", 1)[1].partition("/")
    if not netloc:
        raise _invalid(raw, f"no {'host' if scheme == 'hdfs' else 'bucket'} in storage URI")
    if "@" in netloc:
        raise _invalid(raw, "credentials do not belong in the URI: pass them as storage options")
    if scheme == "hdfs":
        return StorageURI(scheme, netloc, posixpath.normpath("/" + path))
    return StorageURI(scheme, netloc, path.strip("/"))


def _invalid(raw: str, why: str) -> StorageConfigError:
    return StorageConfigError(f"{redact(raw)}: {why}", uri=redact(raw), cause="invalid_uri")


def as_uri(uri: str | os.PathLike[str] | StorageURI) -> StorageURI:
    """Accept text, a path or an already parsed URI."""
    return uri if isinstance(uri, StorageURI) else parse_uri(uri)
