"""Which service an inference path names, and each service's ready replicas."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote

if TYPE_CHECKING:
    from pier.gateway.pool import Target

TFSERVING = "tfserving"
V2 = "v2"
_PREFIXES = (("/v1/models/", TFSERVING), ("/v2/models/", V2))


@dataclass(frozen=True)
class Backend:
    """One ready replica of a service."""

    id: str  # replica id, stable across route updates
    revision: int
    host: str
    port: int


def service_of(path: str) -> tuple[str, str] | None:
    """(service, protocol) for a TF Serving or V2 model path, else None.

    ``/v1/models/NAME[:verb|/versions/N|/labels/L|/metadata]`` is TF Serving REST,
    ``/v2/models/NAME[/versions/V][/infer|/ready|/config|/stats]`` the Open Inference
    Protocol. The query string must already be cut off.
    """
    for prefix, protocol in _PREFIXES:
        if path.startswith(prefix):
            name = path[len(prefix) :].split("/", 1)[0]
            if protocol == TFSERVING:
                name = name.split(":", 1)[0]
            if "%" in name:
                name = unquote(name)
            return (name, protocol) if name else None
    return None


class ServiceRoute:
    """One service's ready replicas (replaced on every update) and its requests in flight."""

    __slots__ = ("inflight", "name", "targets")

    def __init__(self, name: str) -> None:
        self.name = name
        self.targets: tuple[Target, ...] = ()
        self.inflight = 0

    def read_inflight(self) -> float:
        return float(self.inflight)
