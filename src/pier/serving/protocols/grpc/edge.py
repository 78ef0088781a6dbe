"""The gRPC edge: Pier error codes to gRPC status codes, and one wrapper for every servicer method.

Each RPC handler is wrapped once (``grpc_edge``): a PierError ends the call with its
status and message, anything else with INTERNAL and one logged traceback. No handler
catches errors itself.
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, NoReturn, Protocol, TypeVar

import grpc

from pier.errors import ErrorCode, PierError

log = logging.getLogger(__name__)

#: Error code -> gRPC status of the model server's gRPC edge (every code has one; a test checks).
STATUS_BY_CODE: dict[ErrorCode, grpc.StatusCode] = {
    ErrorCode.INVALID_ARGUMENT: grpc.StatusCode.INVALID_ARGUMENT,
    ErrorCode.NOT_FOUND: grpc.StatusCode.NOT_FOUND,
    ErrorCode.ALREADY_EXISTS: grpc.StatusCode.ALREADY_EXISTS,
    ErrorCode.FAILED_PRECONDITION: grpc.StatusCode.FAILED_PRECONDITION,
    ErrorCode.METHOD_NOT_ALLOWED: grpc.StatusCode.UNIMPLEMENTED,
    ErrorCode.UNAUTHENTICATED: grpc.StatusCode.UNAUTHENTICATED,
    ErrorCode.PERMISSION_DENIED: grpc.StatusCode.PERMISSION_DENIED,
    ErrorCode.RESOURCE_EXHAUSTED: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ErrorCode.UNIMPLEMENTED: grpc.StatusCode.UNIMPLEMENTED,
    ErrorCode.UNAVAILABLE: grpc.StatusCode.UNAVAILABLE,
    ErrorCode.DEADLINE_EXCEEDED: grpc.StatusCode.DEADLINE_EXCEEDED,
    ErrorCode.LOAD_FAILED: grpc.StatusCode.INTERNAL,
    ErrorCode.DATA_LOSS: grpc.StatusCode.DATA_LOSS,
    ErrorCode.INTERNAL: grpc.StatusCode.INTERNAL,
}

Handler = TypeVar("Handler", bound=Callable[..., Any])


class Context(Protocol):
    """What the servicers use of ``grpc.aio.ServicerContext`` (grpc ships no type information)."""

    async def abort(self, code: grpc.StatusCode, details: str = "") -> NoReturn: ...


def grpc_status(exc: PierError) -> grpc.StatusCode:
    """The gRPC status that answers ``exc``."""
    return STATUS_BY_CODE[exc.code]


async def _abort(context: Context, exc: BaseException, rpc: str) -> NoReturn:
    if isinstance(exc, PierError):
        await context.abort(grpc_status(exc), exc.message)
    log.error("gRPC %s failed", rpc, exc_info=exc)
    await context.abort(
        grpc.StatusCode.INTERNAL, f"internal error ({type(exc).__name__}); see the server log"
    )


def grpc_edge(handler: Handler) -> Handler:
    """Wrap one servicer method (unary or response-streaming) in the transport's error edge."""
    rpc = handler.__name__
    if inspect.isasyncgenfunction(handler):

        @functools.wraps(handler)
        async def stream(self: Any, request: Any, context: Context) -> AsyncIterator[Any]:
            try:
                async for item in handler(self, request, context):
                    yield item
            except grpc.aio.AbortError:
                raise
            except Exception as exc:
                await _abort(context, exc, rpc)

        return stream  # type: ignore[return-value]

    @functools.wraps(handler)
    async def unary(self: Any, request: Any, context: Context) -> Any:
        try:
            return await handler(self, request, context)
        except grpc.aio.AbortError:
            raise
        except Exception as exc:
            await _abort(context, exc, rpc)

    return unary  # type: ignore[return-value]
