"""Which service an inference path names, and each service's route: its ready replicas."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import unquote

if TYPE_CHECKING:
    from pier.gateway.pool import RoutedReplica

TFSERVING = "tfserving"
V2 = "v2"
_PREFIXES = (("/v1/models/", TFSERVING), ("/v2/models/", V2))


@dataclass(frozen=True)
class Replica:
    """One ready replica of a service, as the routing table names it."""

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

    __slots__ = ("inflight", "name", "replicas", "stopped", "wanted")

    def __init__(self, name: str) -> None:
        self.name = name
        self.replicas: tuple[RoutedReplica, ...] = ()
        self.inflight = 0
        #: the service was stopped by its owner: no replica is meant to run
        self.stopped = False
        #: how many replicas the service should have; None when the route's source does not say
        self.wanted: int | None = None

    def read_inflight(self) -> float:
        return float(self.inflight)

    def no_replica_reason(self) -> str:
        """Why a request to this service finds no ready replica, and what the owner can do."""
        name = self.name
        if self.stopped:
            return f"service '{name}' is stopped (pier start {name})"
        if self.wanted == 0:
            return f"service '{name}' is scaled to 0 replicas (pier scale {name} N)"
        if self.wanted is None:
            return f"service '{name}' has no ready replica"
        return (
            f"service '{name}' has no ready replica (0 of {self.wanted} ready); "
            f"its replicas may be starting or failing (pier describe {name})"
        )
