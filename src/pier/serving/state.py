"""What the health endpoints of every transport report: started, draining, ready."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


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
