"""Pier error codes to gRPC status codes (the same classes the REST statuses express)."""

from __future__ import annotations

from typing import Any, NoReturn

import grpc

from pier.errors import PierError

STATUS_BY_CODE = {
    "invalid_argument": grpc.StatusCode.INVALID_ARGUMENT,
    "not_found": grpc.StatusCode.NOT_FOUND,
    "unavailable": grpc.StatusCode.UNAVAILABLE,
    "unimplemented": grpc.StatusCode.UNIMPLEMENTED,
    "resource_exhausted": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "permission_denied": grpc.StatusCode.PERMISSION_DENIED,
    "data_loss": grpc.StatusCode.DATA_LOSS,
    "load_failed": grpc.StatusCode.INTERNAL,
    "internal": grpc.StatusCode.INTERNAL,
}


def grpc_status(exc: PierError) -> grpc.StatusCode:
    return STATUS_BY_CODE.get(exc.code, grpc.StatusCode.INTERNAL)


async def abort(context: Any, exc: PierError) -> NoReturn:
    """End the call with the status that matches ``exc`` and its message."""
    await context.abort(grpc_status(exc), exc.message)
    raise AssertionError("context.abort returned")  # pragma: no cover - abort always raises
