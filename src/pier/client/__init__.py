"""Python SDK of Pier: manage services through the control plane's API and send predictions."""

from __future__ import annotations

from pier.client.api import (
    PierAPIError,
    PierClient,
    PierConnectionError,
    ServiceFailed,
    WaitTimeout,
    guess_protocol,
)

__all__ = [
    "PierAPIError",
    "PierClient",
    "PierConnectionError",
    "ServiceFailed",
    "WaitTimeout",
    "guess_protocol",
]
