"""What the health and status endpoints report: the server's state, and each model version's."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol


class VersionState(StrEnum):
    """Life cycle of one model version inside a server."""

    START = "START"
    LOADING = "LOADING"
    AVAILABLE = "AVAILABLE"
    UNLOADING = "UNLOADING"
    END = "END"
    FAILED = "FAILED"

    @property
    def tfserving(self) -> str:
        """TF Serving's state name (a failed load ends: END with an error status)."""
        return "END" if self is VersionState.FAILED else self.value

    @property
    def v2(self) -> str:
        """The V2 repository index state name."""
        return {
            VersionState.START: "LOADING",
            VersionState.LOADING: "LOADING",
            VersionState.AVAILABLE: "READY",
            VersionState.UNLOADING: "UNLOADING",
            VersionState.END: "UNAVAILABLE",
            VersionState.FAILED: "UNAVAILABLE",
        }[self]


@dataclass(frozen=True, slots=True)
class VersionStatus:
    """The state of one version and, when it failed, why."""

    version: int
    state: VersionState
    reason: str = ""


class _Repository(Protocol):
    def all_ready(self) -> bool: ...


@dataclass(slots=True)
class ServerState:
    """Flipped by the server as it starts and stops; read by REST and gRPC health checks."""

    started: bool = False
    draining: bool = False
    strict_readiness: bool = True

    def is_ready(self, repository: _Repository) -> bool:
        if not self.started or self.draining:
            return False
        return repository.all_ready() if self.strict_readiness else True
