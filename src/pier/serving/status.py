"""Load states of model versions, as TF Serving and the V2 repository index report them."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


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
