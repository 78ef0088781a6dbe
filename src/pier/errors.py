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
