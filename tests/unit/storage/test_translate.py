"""Backend exceptions become Pier storage errors that name the URI and the cause, without secrets."""

from __future__ import annotations

import errno
import socket

import pytest

from pier.errors import (
    NotFound,
    PierError,
    StorageAccessDenied,
    StorageConfigError,
    StorageError,
    StorageNotFound,
    StorageTimeout,
    StorageUnavailable,
    Unavailable,
)
from pier.storage import StorageOptions, parse_uri
from pier.storage.translate import classify, storage_errors, translate

URI = parse_uri("s3://bucket/models/resnet")
OPTIONS = StorageOptions(
    endpoint_url="http://minio:9000", key="AKIAKEYID00000000000", secret="the-secret-key"
)


@pytest.mark.parametrize(
    ("exc", "cls"),
    [
        (FileNotFoundError("bucket/models/resnet"), StorageNotFound),
        (PermissionError("Access Denied"), StorageAccessDenied),
        (TimeoutError(), StorageTimeout),
        (TimeoutError(), StorageTimeout),
        (TimeoutError("timed out"), StorageTimeout),
        (ConnectionRefusedError(errno.ECONNREFUSED, "refused"), StorageUnavailable),
        (socket.gaierror(-2, "Name or service not known"), StorageUnavailable),
        (OSError(errno.EBUSY, "SlowDown"), StorageUnavailable),
        (OSError(errno.EHOSTUNREACH, "no route"), StorageUnavailable),
        (OSError(errno.EACCES, "denied"), StorageAccessDenied),
        (OSError(errno.ENOENT, "gone"), StorageNotFound),
        (ValueError("odd"), StorageError),
    ],
)
def test_builtin_exceptions(exc: Exception, cls: type[StorageError]) -> None:
    assert classify(exc)[0] is cls


def test_botocore_exceptions() -> None:
    from botocore.exceptions import (
        ClientError,
        ConnectTimeoutError,
        EndpointConnectionError,
        NoCredentialsError,
        ProfileNotFound,
        ReadTimeoutError,
    )

    def client_error(code: str) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": code}}, "GetObject")

    assert classify(client_error("NoSuchKey"))[0] is StorageNotFound
    assert classify(client_error("AccessDenied"))[0] is StorageAccessDenied
    assert classify(client_error("InvalidAccessKeyId"))[0] is StorageAccessDenied
    assert classify(client_error("SlowDown"))[0] is StorageUnavailable
    assert classify(client_error("Teapot"))[0] is StorageError
    assert classify(EndpointConnectionError(endpoint_url="http://x"))[0] is StorageUnavailable
    assert classify(ConnectTimeoutError(endpoint_url="http://x"))[0] is StorageTimeout
    assert classify(ReadTimeoutError(endpoint_url="http://x"))[0] is StorageTimeout
    assert classify(NoCredentialsError())[0] is StorageAccessDenied
    assert classify(ProfileNotFound(profile="p"))[0] is StorageConfigError


def test_aiohttp_exceptions() -> None:
    import aiohttp
    from aiohttp.client_reqrep import RequestInfo
    from multidict import CIMultiDict, CIMultiDictProxy
    from yarl import URL

    info = RequestInfo(URL("http://h/m"), "GET", CIMultiDictProxy(CIMultiDict()), URL("http://h/m"))
    for status, cls in (
        (404, StorageNotFound),
        (403, StorageAccessDenied),
        (503, StorageUnavailable),
        (504, StorageTimeout),
    ):
        exc = aiohttp.ClientResponseError(info, (), status=status)
        assert classify(exc)[0] is cls
    assert classify(aiohttp.ServerTimeoutError())[0] is StorageTimeout
    assert classify(aiohttp.ServerDisconnectedError())[0] is StorageUnavailable


def test_message_names_uri_action_cause_and_no_secret() -> None:
    exc = PermissionError("denied for key AKIAKEYID00000000000 with secret the-secret-key")
    err = translate(exc, URI, OPTIONS, "listing")
    assert isinstance(err, StorageAccessDenied)
    assert err.code == "permission_denied"
    assert str(err).startswith(
        "s3://bucket/models/resnet: listing failed: access denied at http://minio:9000"
    )
    assert "AKIAKEYID00000000000" not in str(err) and "the-secret-key" not in str(err)
    assert (err.uri, err.cause) == ("s3://bucket/models/resnet", "access denied")


def test_timeout_message_says_how_long() -> None:
    err = translate(TimeoutError(), URI, StorageOptions(timeout=2), "reading")
    assert "timed out after 2s" in str(err)
    assert isinstance(err, Unavailable)


def test_context_manager_translates_and_does_not_chain() -> None:
    with pytest.raises(StorageNotFound) as info, storage_errors(URI, OPTIONS, "reading"):
        raise FileNotFoundError("nope")
    assert isinstance(info.value, NotFound)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_pier_errors_pass_through() -> None:
    with pytest.raises(PierError, match="mine"), storage_errors(URI, OPTIONS, "reading"):
        raise PierError("mine")
