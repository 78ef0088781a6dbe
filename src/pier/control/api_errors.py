"""The management API's edge: error codes to HTTP statuses, JSON error bodies, auth, body cap.

Every error the API returns has the shape ``{"error": message, "code": code}`` (plus
``problems`` for invalid input), whatever raised it: our PierErrors, FastAPI's request
validation, Starlette's 404/405, or a body over the size limit.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pier.errors import ErrorCode, PayloadTooLarge, PierError, SpecError, Unauthenticated

log = logging.getLogger(__name__)

#: Largest request body the API reads, in bytes.
MAX_BODY_BYTES = 1024 * 1024

#: Error code -> HTTP status of the management API (every code has one; a test checks).
#: Where codes share a status, the first listed is the one an HTTP error of that status gets.
STATUS_BY_CODE: dict[ErrorCode, int] = {
    ErrorCode.INVALID_ARGUMENT: 400,
    ErrorCode.UNAUTHENTICATED: 401,
    ErrorCode.PERMISSION_DENIED: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.ALREADY_EXISTS: 409,
    ErrorCode.FAILED_PRECONDITION: 409,
    ErrorCode.RESOURCE_EXHAUSTED: 429,
    ErrorCode.INTERNAL: 500,
    ErrorCode.LOAD_FAILED: 500,
    ErrorCode.DATA_LOSS: 500,
    ErrorCode.UNIMPLEMENTED: 501,
    ErrorCode.UNAVAILABLE: 503,
    ErrorCode.DEADLINE_EXCEEDED: 504,
}


def http_status(exc: PierError) -> int:
    """The HTTP status that answers ``exc``."""
    if isinstance(exc, PayloadTooLarge):
        return 413  # a resource_exhausted that HTTP names more precisely
    return STATUS_BY_CODE[exc.code]


def code_of_status(status: int) -> ErrorCode:
    """The code for an HTTP error raised outside our tree (Starlette's 404 and 405)."""
    if status == 413:
        return ErrorCode.RESOURCE_EXHAUSTED
    for code, mapped in STATUS_BY_CODE.items():
        if mapped == status:
            return code
    return ErrorCode.INTERNAL if status >= 500 else ErrorCode.INVALID_ARGUMENT


def error_body(
    message: str, code: ErrorCode, problems: Sequence[tuple[str, str]] | None = None
) -> dict[str, Any]:
    """The JSON every API error answers with."""
    body: dict[str, Any] = {"error": message, "code": code}
    if problems is not None:
        body["problems"] = [{"path": p, "message": m} for p, m in problems]
    return body


def error_response(exc: PierError) -> JSONResponse:
    """A JSON response for one of our errors, with the status its code maps to."""
    problems = exc.problems if isinstance(exc, SpecError) else None
    headers = {"WWW-Authenticate": "Bearer"} if exc.code is ErrorCode.UNAUTHENTICATED else None
    return JSONResponse(
        error_body(exc.message, exc.code, problems), status_code=http_status(exc), headers=headers
    )


def _field_path(loc: Sequence[int | str]) -> str:
    """``("body", "replicas")`` → ``replicas``; ``("query", "limit")`` → ``limit (query)``."""
    where, *rest = loc if loc else ("body",)
    path = ".".join(str(p) for p in rest)
    if where == "body":
        return path or "body"
    return f"{path} ({where})" if path else str(where)


def validation_problems(errors: Sequence[Any]) -> list[tuple[str, str]]:
    """FastAPI/pydantic validation errors as ``(field path, message)`` pairs."""
    problems: list[tuple[str, str]] = []
    for err in errors:
        loc = tuple(err.get("loc", ()))
        if err.get("type") == "json_invalid":
            cause = (err.get("ctx") or {}).get("error", "malformed JSON")
            where = f" at character {loc[1]}" if len(loc) > 1 else ""
            problems.append(("body", f"not valid JSON: {cause}{where}"))
        else:
            problems.append((_field_path(loc), str(err.get("msg", "invalid value"))))
    return problems


def _problems_message(problems: Sequence[tuple[str, str]]) -> str:
    first = f"{problems[0][0]}: {problems[0][1]}" if problems else "invalid request"
    more = len(problems) - 1
    return first + (f" (and {more} more problem{'s' * (more > 1)})" if more > 0 else "")


async def _on_pier_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PierError)
    if http_status(exc) >= 500:
        log.error("%s %s failed: %s", request.method, request.url.path, exc.message)
    return error_response(exc)


async def _on_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = validation_problems(exc.errors())
    return JSONResponse(
        error_body(_problems_message(problems), ErrorCode.INVALID_ARGUMENT, problems),
        status_code=400,
    )


async def _on_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    headers = exc.headers
    if exc.status_code == 404:
        message = f"no such API path: {request.method} {request.url.path}"
    elif exc.status_code == 405:
        allowed = _allowed_methods(request) or (exc.headers or {}).get("Allow", "")
        headers = {"Allow": allowed}
        message = f"{request.method} is not allowed on {request.url.path}; allowed: {allowed}"
    else:
        message = str(exc.detail)
    return JSONResponse(
        error_body(message, code_of_status(exc.status_code)),
        status_code=exc.status_code,
        headers=headers,
    )


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (Starlette names only the first route's)."""
    allowed = [
        method
        for method in ("GET", "POST", "PUT", "DELETE")
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]
    return ", ".join(allowed)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("%s %s failed", request.method, request.url.path)
    # Starlette re-raises the exception once this response is sent, and the server then
    # drops the connection; saying so lets a keep-alive client open a fresh one instead of
    # sending its next request into a closed socket.
    return JSONResponse(
        error_body(
            f"internal error ({type(exc).__name__}); see the control plane log", ErrorCode.INTERNAL
        ),
        status_code=500,
        headers={"Connection": "close"},
    )


def install_error_handlers(app: FastAPI) -> None:
    """Make every error the app answers take the ``{"error", "code"}`` shape."""
    handlers: dict[type[Exception], Callable[[Request, Exception], Awaitable[JSONResponse]]] = {
        PierError: _on_pier_error,
        RequestValidationError: _on_validation_error,
        StarletteHTTPException: _on_http_exception,
        Exception: _on_unexpected,
    }
    for kind, handler in handlers.items():
        app.add_exception_handler(kind, handler)


#: Declares the bearer scheme in the OpenAPI document; TokenAuth answers the 401 itself.
_bearer = HTTPBearer(auto_error=False, description="The admin token of `pier up`.")


class TokenAuth:
    """FastAPI dependency: the request must carry ``Authorization: Bearer <admin token>``."""

    def __init__(self, token: str) -> None:
        if not token:
            raise ValueError("the API needs a non-empty admin token")
        self._token = token.encode()

    async def __call__(
        self, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
    ) -> None:
        if creds is None:
            raise Unauthenticated(
                "missing admin token: send 'Authorization: Bearer TOKEN' "
                "(the token is in the Pier home folder, file 'token')"
            )
        if not hmac.compare_digest(creds.credentials.encode(), self._token):
            raise Unauthenticated("wrong admin token")


class BodyLimit:
    """ASGI middleware: refuse request bodies over ``limit`` bytes with 413, before any handler runs.

    The body is read whole (it is at most ``limit`` bytes) and replayed to the app, so a
    chunked upload is held to the same cap as one with a Content-Length.
    """

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "DELETE", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await self._too_large(scope, receive, send)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._too_large(scope, receive, send)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send) -> None:
        exc = PayloadTooLarge(f"request body over the {self.limit} byte limit")
        await error_response(exc)(scope, receive, send)
