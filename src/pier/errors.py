"""Pier's error tree: one base class, a stable code per kind, messages a user can act on.

The mapping from these codes to HTTP statuses and gRPC codes lives at each transport's
edge (the model server's REST and gRPC, the management API), one table each, never here.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    """The stable code of each kind of error; the values appear in metrics and JSON bodies."""

    INVALID_ARGUMENT = "invalid_argument"
    NOT_FOUND = "not_found"
    ALREADY_EXISTS = "already_exists"
    FAILED_PRECONDITION = "failed_precondition"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    UNAUTHENTICATED = "unauthenticated"
    PERMISSION_DENIED = "permission_denied"
    RESOURCE_EXHAUSTED = "resource_exhausted"
    UNIMPLEMENTED = "unimplemented"
    UNAVAILABLE = "unavailable"
    DEADLINE_EXCEEDED = "deadline_exceeded"
    LOAD_FAILED = "load_failed"
    DATA_LOSS = "data_loss"
    INTERNAL = "internal"


class PierError(Exception):
    """Base of every error Pier raises on purpose."""

    code: ErrorCode = ErrorCode.INTERNAL

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(PierError):
    """The request or file is malformed: wrong JSON, datatype, shape or value."""

    code = ErrorCode.INVALID_ARGUMENT


class NotFound(PierError):
    """A model, version or label that the server does not have."""

    code = ErrorCode.NOT_FOUND


class Unavailable(PierError):
    """The thing exists but cannot serve right now (loading, failed, draining)."""

    code = ErrorCode.UNAVAILABLE


class Unsupported(PierError):
    """The operation is valid but this model or runtime does not implement it."""

    code = ErrorCode.UNIMPLEMENTED


class ResourceExhausted(PierError):
    """A size or queue limit was exceeded."""

    code = ErrorCode.RESOURCE_EXHAUSTED


class ConfigError(InvalidInput):
    """A model configuration file or setting is invalid."""


class ModelLoadError(PierError):
    """A model version could not be loaded; the message says why."""

    code = ErrorCode.LOAD_FAILED


class InternalError(PierError):
    """A model or runtime failed while running a valid request."""

    code = ErrorCode.INTERNAL


class PayloadTooLarge(ResourceExhausted):
    """A request body over the configured size limit."""


class StorageError(PierError):
    """Model storage failed; the message names the URI (credentials redacted) and the cause.

    Subclasses say which cause; ``uri`` and ``cause`` carry the same for programs.
    """

    def __init__(self, message: str, *, uri: str = "", cause: str = "") -> None:
        super().__init__(message)
        self.uri = uri
        self.cause = cause


class StorageNotFound(StorageError, NotFound):
    """The bucket, object or folder a URI names does not exist."""


class StorageAccessDenied(StorageError):
    """The store refused the credentials, or they lack permission for the URI."""

    code = ErrorCode.PERMISSION_DENIED


class StorageUnavailable(StorageError, Unavailable):
    """The store could not be reached or answered with a server error; retrying may help."""


class StorageTimeout(StorageUnavailable):
    """The store did not answer within the configured timeout."""


class StorageIntegrityError(StorageError):
    """Downloaded bytes do not match the checksum or size the store published."""

    code = ErrorCode.DATA_LOSS


class StorageBackendMissing(StorageError, Unsupported):
    """The URI's scheme needs an optional backend that is not installed; the message names the extra."""


class StorageConfigError(StorageError, ConfigError):
    """A storage URI or storage option is malformed or unsupported."""


class ArchiveError(StorageError, InvalidInput):
    """A model archive is corrupt, too large, or unsafe to extract (paths or links leave the folder)."""


class AlreadyExists(PierError):
    """Something with that name exists already (a service, a revision)."""

    code = ErrorCode.ALREADY_EXISTS


class FailedPrecondition(PierError):
    """The request is valid but the current state does not allow it (e.g. scaling a stopped service)."""

    code = ErrorCode.FAILED_PRECONDITION


class SpecError(ConfigError):
    """A service spec is invalid; ``problems`` lists every ``(field path, message)`` found."""

    def __init__(self, message: str, problems: list[tuple[str, str]] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class StoreError(Unavailable):
    """The control plane's database failed or cannot be reached; retrying may help.

    The message names the database (password hidden) and the cause; ``database`` and
    ``cause`` carry the same for programs.
    """

    def __init__(self, message: str, *, database: str = "", cause: str = "") -> None:
        super().__init__(message)
        self.database = database
        self.cause = cause


class MethodNotAllowed(PierError):
    """The path exists but does not take this HTTP method."""

    code = ErrorCode.METHOD_NOT_ALLOWED


class Unauthenticated(PierError):
    """The request carries no credentials, or wrong ones."""

    code = ErrorCode.UNAUTHENTICATED


__all__ = [
    "AlreadyExists",
    "ArchiveError",
    "ConfigError",
    "ErrorCode",
    "FailedPrecondition",
    "InternalError",
    "InvalidInput",
    "MethodNotAllowed",
    "ModelLoadError",
    "NotFound",
    "PayloadTooLarge",
    "PierError",
    "ResourceExhausted",
    "SpecError",
    "StorageAccessDenied",
    "StorageBackendMissing",
    "StorageConfigError",
    "StorageError",
    "StorageIntegrityError",
    "StorageNotFound",
    "StorageTimeout",
    "StorageUnavailable",
    "StoreError",
    "Unauthenticated",
    "Unavailable",
    "Unsupported",
]
