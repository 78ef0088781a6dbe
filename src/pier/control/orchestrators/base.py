"""The interface every orchestrator implements: run a revision's replicas somewhere.

The controller says how many replicas each (service, revision) should have; the
orchestrator makes processes (or pods) match, restarts the ones that die, and reports what
it sees. It never reads the store: the controller hands it the spec.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from pier.control.records import EventKind, ReplicaRecord


@dataclass(frozen=True)
class RevisionPlan:
    """What to run: one revision of one service."""

    service: str
    revision: int
    spec: dict[str, Any]  # ServiceSpec.model_dump(mode="json"), as stored in the revision


@dataclass(frozen=True)
class ReplicaEvent:
    """A change in a replica's life the orchestrator reports to the controller."""

    service: str
    revision: int
    replica: str
    kind: EventKind
    message: str


#: called from the orchestrator's own tasks; must not block
EventSink = Callable[[ReplicaEvent], None]
#: called whenever any replica's state changes (so routes update at once, not next poll)
ChangeSink = Callable[[], None]


class Orchestrator(Protocol):
    """Runs replicas; the local (processes) and Kubernetes (pods) kinds implement it."""

    async def start(self) -> None:
        """Begin supervising; re-adopt replicas a previous control plane left running."""
        ...

    async def apply(self, plan: RevisionPlan, replicas: int) -> None:
        """Make the revision have ``replicas`` replicas (start missing, drain and stop extra)."""
        ...

    async def delete(self, service: str, revision: int) -> None:
        """Drain and stop every replica of the revision and forget it."""
        ...

    def observe(self) -> list[ReplicaRecord]:
        """Every replica this orchestrator knows, as it is now."""
        ...

    def logs(
        self, service: str, replica: str | None = None, tail: int = 100, follow: bool = False
    ) -> AsyncIterator[str]:
        """Log lines of a service's replicas (or one of them): the last ``tail``, then new ones."""
        ...

    async def close(self, stop_replicas: bool = False) -> None:
        """Stop supervising; replicas keep running unless ``stop_replicas`` (re-adopted later)."""
        ...
