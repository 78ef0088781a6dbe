"""Pier's error tree: one base class, a stable code per kind, messages a user can act on.

The mapping from these codes to HTTP statuses and gRPC codes lives at the protocol
edge (``pier.serving.protocols``), never here.
"""

from __future__ import annotations


class PierError(Exception):
    """Base of every error Pier raises on purpose."""

    code = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(PierError):
    """The request or file is malformed: wrong JSON, datatype, shape or value."""

    code = "invalid_argument"


class NotFound(PierError):
    """A model, version or label that the server does not have."""

    code = "not_found"


class Unavailable(PierError):
    """The thing exists but cannot serve right now (loading, failed, draining)."""

    code = "unavailable"


class Unsupported(PierError):
    """The operation is valid but this model or runtime does not implement it."""

    code = "unimplemented"


class ResourceExhausted(PierError):
    """A size or queue limit was exceeded."""

    code = "resource_exhausted"


class ConfigError(InvalidInput):
    """A model configuration file or setting is invalid."""


class ModelLoadError(PierError):
    """A model version could not be loaded; the message says why."""

    code = "load_failed"


class InternalError(PierError):
    """A model or runtime failed while running a valid request."""

    code = "internal"


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

    code = "permission_denied"


class StorageUnavailable(StorageError, Unavailable):
    """The store could not be reached or answered with a server error; retrying may help."""


class StorageTimeout(StorageUnavailable):
    """The store did not answer within the configured timeout."""


class StorageIntegrityError(StorageError):
    """Downloaded bytes do not match the checksum or size the store published."""

    code = "data_loss"


class StorageBackendMissing(StorageError, Unsupported):
    """The URI's scheme needs an optional backend that is not installed; the message names the extra."""


class StorageConfigError(StorageError, ConfigError):
    """A storage URI or storage option is malformed or unsupported."""


class ArchiveError(StorageError, InvalidInput):
    """A model archive is corrupt, too large, or unsafe to extract (paths or links leave the folder)."""


class AlreadyExists(PierError):
    """Something with that name exists already (a service, a revision)."""

    code = "already_exists"


class FailedPrecondition(PierError):
    """The request is valid but the current state does not allow it (e.g. scaling a stopped service)."""

    code = "failed_precondition"


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


__all__ = [
    "AlreadyExists",
    "ArchiveError",
    "ConfigError",
    "FailedPrecondition",
    "InternalError",
    "InvalidInput",
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
    "Unavailable",
    "Unsupported",
]
