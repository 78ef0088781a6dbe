"""Every error code has a status on every transport: model server REST and gRPC, management API."""

from __future__ import annotations

import grpc
import pytest

from pier.control import api_errors
from pier.errors import ErrorCode, MethodNotAllowed, PayloadTooLarge, PierError, Unauthenticated
from pier.serving.protocols import http
from pier.serving.protocols.grpc import edge


@pytest.mark.parametrize(
    "table",
    [http.STATUS_BY_CODE, edge.STATUS_BY_CODE, api_errors.STATUS_BY_CODE],
    ids=["serving-rest", "serving-grpc", "management-api"],
)
def test_each_transport_maps_every_code(table: dict[ErrorCode, object]) -> None:
    assert set(table) == set(ErrorCode)


def test_every_error_class_has_a_code_of_the_enum() -> None:
    def subclasses(cls: type[PierError]) -> list[type[PierError]]:
        return [cls, *(s for sub in cls.__subclasses__() for s in subclasses(sub))]

    for cls in subclasses(PierError):
        assert isinstance(cls.code, ErrorCode), cls


def test_codes_keep_their_strings() -> None:
    # The values are in metrics labels and JSON bodies: they do not change.
    assert ErrorCode.INVALID_ARGUMENT == "invalid_argument"
    assert f"{ErrorCode.LOAD_FAILED}" == "load_failed"
    assert str(ErrorCode.NOT_FOUND) == "not_found"


def test_statuses_that_http_names_more_precisely() -> None:
    assert http.http_status(PayloadTooLarge("x")) == 413
    assert api_errors.http_status(PayloadTooLarge("x")) == 413
    assert http.http_status(MethodNotAllowed("x")) == 405
    assert api_errors.http_status(Unauthenticated("x")) == 401
    assert edge.grpc_status(MethodNotAllowed("x")) == grpc.StatusCode.UNIMPLEMENTED
    assert api_errors.code_of_status(405) is ErrorCode.METHOD_NOT_ALLOWED
    assert api_errors.code_of_status(409) is ErrorCode.ALREADY_EXISTS
    assert api_errors.code_of_status(413) is ErrorCode.RESOURCE_EXHAUSTED
    assert api_errors.code_of_status(418) is ErrorCode.INVALID_ARGUMENT
