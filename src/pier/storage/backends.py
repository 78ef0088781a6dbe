"""Open the fsspec filesystem for a URI: s3fs, gcsfs, ossfs, pyarrow HDFS, HTTP, local.

Backends are imported here, lazily, on first use of their scheme: ``import pier.storage``
loads none of them.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from pier.errors import StorageBackendMissing
from pier.storage.options import StorageOptions
from pier.storage.translate import storage_errors
from pier.storage.uri import StorageURI, as_uri

# scheme -> (module that must import, pier extra that installs it)
BACKENDS = {
    "s3": ("s3fs", "s3"),
    "gs": ("gcsfs", "gcs"),
    "oss": ("ossfs", "oss"),
    "hdfs": ("pyarrow", "hdfs"),
    "http": ("aiohttp", "http"),
    "https": ("aiohttp", "http"),
}

FileSystem = Any  # fsspec.AbstractFileSystem: fsspec ships no type information


def _require(uri: StorageURI) -> Any:
    module, extra = BACKENDS[uri.scheme]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise StorageBackendMissing(
            f"{uri}: {uri.scheme}:// needs the {module} package, which is not installed "
            f"({exc.name or module} missing): pip install 'pier[{extra}]'",
            uri=str(uri),
            cause="backend missing",
        ) from None


def open_filesystem(
    uri: str | os.PathLike[str] | StorageURI, options: StorageOptions | None = None
) -> tuple[FileSystem, str]:
    """The fsspec filesystem for ``uri`` and the path to hand it.

    Listing caches are off: a poller must see new objects. Instances are shared per
    set of arguments (fsspec's instance cache) and are safe to use from several threads.
    """
    uri = as_uri(uri)
    options = options or StorageOptions()
    if uri.scheme == "file":
        from fsspec.implementations.local import LocalFileSystem

        return LocalFileSystem(), uri.fs_path
    backend = _require(uri)
    with storage_errors(uri, options, "opening the store"):
        if uri.scheme == "s3":
            return _s3(backend, options), uri.fs_path
        if uri.scheme in ("http", "https"):
            return _http(backend, options), uri.fs_path
        if uri.scheme == "gs":
            return _gcs(backend, options), uri.fs_path
        if uri.scheme == "oss":
            return _oss(backend, options), uri.fs_path
        return _hdfs(uri, options), uri.fs_path


def _s3(s3fs: Any, o: StorageOptions) -> FileSystem:
    kwargs: dict[str, Any] = {
        "anon": o.anon,
        "use_listings_cache": False,
        "config_kwargs": {
            "connect_timeout": o.timeout,
            "read_timeout": o.timeout,
            # s3fs retries every call itself (``retries`` below): botocore tries once.
            "retries": {"max_attempts": 1, "mode": "standard"},
        },
        **o.extra,
    }
    if o.endpoint_url:
        kwargs["endpoint_url"] = o.endpoint_url
    if o.region:
        kwargs["client_kwargs"] = {"region_name": o.region}
    if o.key or o.secret:
        kwargs.update(key=o.key, secret=o.secret, token=o.token)
    elif o.profile and not o.anon:
        kwargs["profile"] = o.profile
    fs = s3fs.S3FileSystem(**kwargs)
    # A class attribute in s3fs, not a constructor argument. fsspec shares one instance
    # per set of arguments: callers that differ only in retries share the latest value.
    fs.retries = o.retries
    return fs


def _http(aiohttp: Any, o: StorageOptions) -> FileSystem:
    from fsspec.implementations.http import HTTPFileSystem

    timeout = aiohttp.ClientTimeout(total=None, connect=o.timeout, sock_read=o.timeout)
    return HTTPFileSystem(use_listings_cache=False, client_kwargs={"timeout": timeout}, **o.extra)


def _gcs(gcsfs: Any, o: StorageOptions) -> FileSystem:
    kwargs: dict[str, Any] = {"use_listings_cache": False, **o.extra}
    if o.anon:
        kwargs["token"] = "anon"
    if o.endpoint_url:
        kwargs["endpoint_url"] = o.endpoint_url
    return gcsfs.GCSFileSystem(**kwargs)


def _oss(ossfs: Any, o: StorageOptions) -> FileSystem:
    kwargs: dict[str, Any] = {"use_listings_cache": False, **o.extra}
    if o.endpoint_url:
        kwargs["endpoint"] = o.endpoint_url
    if o.key or o.secret:
        kwargs.update(key=o.key, secret=o.secret, token=o.token)
    return ossfs.OSSFileSystem(**kwargs)


def _hdfs(uri: StorageURI, o: StorageOptions) -> FileSystem:
    from fsspec.implementations.arrow import HadoopFileSystem

    host, _, port = uri.netloc.rpartition(":") if ":" in uri.netloc else (uri.netloc, "", "")
    kwargs: dict[str, Any] = {"host": host, **o.extra}
    if port:
        kwargs["port"] = int(port)
    return HadoopFileSystem(**kwargs)
