"""Translate backend exceptions (botocore, aiohttp, OSError, fsspec) into Pier's storage errors.

This is the one edge where third-party storage errors are caught: everything above it
sees ``StorageError`` subclasses whose messages name the URI, the action and the cause,
with credentials removed. Backend modules are looked up in ``sys.modules`` rather than
imported: an exception can only come from a library that is already loaded.
"""

from __future__ import annotations

import errno
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pier.errors import (
    PierError,
    StorageAccessDenied,
    StorageConfigError,
    StorageError,
    StorageNotFound,
    StorageTimeout,
    StorageUnavailable,
)
from pier.storage.options import StorageOptions
from pier.storage.uri import StorageURI

Cause = tuple[type[StorageError], str]

NOT_FOUND: Cause = (StorageNotFound, "not found")
DENIED: Cause = (StorageAccessDenied, "access denied")
UNREACHABLE: Cause = (StorageUnavailable, "endpoint unreachable")
UNAVAILABLE: Cause = (StorageUnavailable, "store unavailable")
TIMEOUT: Cause = (StorageTimeout, "timed out")
OTHER: Cause = (StorageError, "failed")

_UNREACHABLE_ERRNOS = {
    errno.ECONNREFUSED,
    errno.ECONNRESET,
    errno.ECONNABORTED,
    errno.EHOSTUNREACH,
    errno.ENETUNREACH,
    errno.EHOSTDOWN,
    errno.ENETDOWN,
}
# s3fs maps SlowDown/ServiceUnavailable to EBUSY and InternalError to EREMOTEIO.
_BUSY_ERRNOS = {errno.EBUSY, getattr(errno, "EREMOTEIO", errno.EIO), errno.EAGAIN}

_S3_CODES: dict[str, Cause] = {
    "NoSuchKey": NOT_FOUND,
    "NoSuchBucket": NOT_FOUND,
    "404": NOT_FOUND,
    "AccessDenied": DENIED,
    "403": DENIED,
    "InvalidAccessKeyId": DENIED,
    "SignatureDoesNotMatch": DENIED,
    "ExpiredToken": DENIED,
    "InvalidToken": DENIED,
    "RequestTimeout": TIMEOUT,
    "SlowDown": UNAVAILABLE,
    "ServiceUnavailable": UNAVAILABLE,
    "InternalError": UNAVAILABLE,
    "500": UNAVAILABLE,
    "502": UNAVAILABLE,
    "503": UNAVAILABLE,
}


def classify(exc: BaseException) -> Cause:
    """Which Pier error and cause words fit a backend exception."""
    cause = _classify_library(exc)
    if cause is not None:
        return cause
    if isinstance(exc, FileNotFoundError):
        return NOT_FOUND
    if isinstance(exc, PermissionError):
        return DENIED
    if isinstance(exc, TimeoutError):  # also asyncio's and fsspec's FSTimeoutError
        return TIMEOUT
    if isinstance(exc, socket.gaierror):
        return (StorageUnavailable, "endpoint unreachable (host name not resolved)")
    if isinstance(exc, ConnectionError):
        return UNREACHABLE
    if isinstance(exc, OSError) and exc.errno is not None:
        if exc.errno in _UNREACHABLE_ERRNOS:
            return UNREACHABLE
        if exc.errno in _BUSY_ERRNOS:
            return UNAVAILABLE
        if exc.errno in (errno.EACCES, errno.EPERM):
            return DENIED
        if exc.errno == errno.ENOENT:
            return NOT_FOUND
    return OTHER


def _classify_library(exc: BaseException) -> Cause | None:
    botocore: Any = sys.modules.get("botocore.exceptions")
    if botocore is not None:
        # Timeouts first: botocore's ConnectTimeoutError is also a ConnectionError.
        if isinstance(exc, botocore.ConnectTimeoutError | botocore.ReadTimeoutError):
            return TIMEOUT
        if isinstance(exc, botocore.NoCredentialsError | botocore.PartialCredentialsError):
            return (StorageAccessDenied, "no usable credentials")
        if isinstance(exc, botocore.ProfileNotFound):
            return (StorageConfigError, "profile not found")
        if isinstance(exc, botocore.ConnectionError | botocore.HTTPClientError):
            return UNREACHABLE
        if isinstance(exc, botocore.ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            return _S3_CODES.get(code, OTHER)
    aiohttp: Any = sys.modules.get("aiohttp")
    if aiohttp is not None:
        if isinstance(exc, aiohttp.ClientResponseError):
            return _http_status(int(exc.status))
        if isinstance(exc, aiohttp.ServerTimeoutError):
            return TIMEOUT
        if isinstance(exc, aiohttp.ClientConnectionError):
            return UNREACHABLE
    return None


def _unwrap(exc: BaseException) -> BaseException:
    """The real failure behind fsspec's HTTP ``FileNotFoundError``, which wraps every error."""
    cause = exc.__cause__
    wrapped = isinstance(exc, FileNotFoundError) and isinstance(cause, Exception)
    return cause if wrapped and cause is not None and classify(cause) is not OTHER else exc


def _http_status(status: int) -> Cause:
    if status in (404, 410):
        return NOT_FOUND
    if status in (401, 403):
        return DENIED
    if status in (408, 504):
        return TIMEOUT
    if status == 429 or status >= 500:
        return UNAVAILABLE
    return OTHER


def translate(
    exc: BaseException, uri: StorageURI, options: StorageOptions, action: str
) -> StorageError:
    """The Pier error for ``exc``, its message naming the URI, the action and the cause."""
    exc = _unwrap(exc)
    cls, words = classify(exc)
    detail = options.redact(str(exc)) or "no detail"
    where = f" at {options.redact(options.endpoint_url)}" if options.endpoint_url else ""
    if cls is StorageTimeout:
        words = f"{words} after {options.timeout:g}s"
    message = f"{uri}: {action} failed: {words}{where} ({type(exc).__name__}: {detail})"
    return cls(message, uri=str(uri), cause=words)


@contextmanager
def storage_errors(uri: StorageURI, options: StorageOptions, action: str) -> Iterator[None]:
    """Re-raise any non-Pier exception from the block as a storage error for ``uri``.

    The original exception is not chained: its text may hold credentials. Its class and
    redacted message are in the new message.
    """
    try:
        yield
    except PierError:
        raise
    except Exception as exc:
        raise translate(exc, uri, options, action) from None
