"""What the management API depends on (store and control hooks) and the documents it returns.

Everything here is pure: records in, JSON-ready dicts out, so the service status rules are
tested without a server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import asdict
from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

from pier.control.records import (
    EventRecord,
    ReplicaRecord,
    ReplicaState,
    RevisionRecord,
    ServiceRecord,
)
from pier.spec import ServiceSpec

#: Largest replica count the API accepts for one service (the spec's bound too).
MAX_REPLICAS = 64

ServiceStatus = Literal[
    "pending", "scaling", "running", "updating", "stopped", "degraded", "failed"
]

#: Replica states that count as "still there" (everything but gone on purpose).
_PRESENT = frozenset(s for s in ReplicaState if s is not ReplicaState.STOPPED)
_BROKEN = frozenset({ReplicaState.BACKOFF, ReplicaState.FAILED})


class ServiceStore(Protocol):
    """The part of ``pier.control.store.Store`` the API calls (all synchronous)."""

    def create_service(
        self, name: str, spec: dict[str, Any], replicas: int
    ) -> tuple[ServiceRecord, RevisionRecord]: ...

    def get_service(self, name: str) -> ServiceRecord: ...

    def list_services(self) -> list[ServiceRecord]: ...

    def update_service(
        self, name: str, spec: dict[str, Any], replicas: int | None = None
    ) -> RevisionRecord: ...

    def set_replicas(self, name: str, replicas: int) -> ServiceRecord: ...

    def set_stopped(self, name: str, stopped: bool) -> ServiceRecord: ...

    def delete_service(self, name: str) -> None: ...

    def get_revision(self, name: str, number: int) -> RevisionRecord: ...

    def list_revisions(self, name: str) -> list[RevisionRecord]: ...

    def list_replicas(self, service: str | None = None) -> list[ReplicaRecord]: ...

    def list_events(self, service: str, limit: int = 100, after: int = 0) -> list[EventRecord]: ...


class ControlHooks(Protocol):
    """What the API asks of the running control plane besides the store."""

    def wake(self) -> None:
        """Reconcile soon: called after every change the API makes."""
        ...

    def logs(
        self, service: str, replica: str | None, tail: int, follow: bool
    ) -> AsyncIterator[str]:
        """Log lines of a service's replicas (or one replica): the last ``tail``, then new ones."""
        ...


#: Checks what a spec names on this machine (local model and code paths) before it is stored:
#: ``(field path, message)`` per problem, paths in Pier's form.
ModelCheck = Callable[[ServiceSpec], list[tuple[str, str]]]


class ScaleRequest(BaseModel):
    """Body of ``POST /api/v1/services/{name}/scale``."""

    model_config = ConfigDict(extra="forbid")

    replicas: int = Field(
        strict=True, ge=0, le=MAX_REPLICAS, description="Desired replica count (0 = none running)."
    )


def service_status(service: ServiceRecord, replicas: Iterable[ReplicaRecord]) -> ServiceStatus:
    """One word for where a service stands, from its record and its replicas.

    stopped: stopped on purpose; updating: replicas of an older revision remain; running:
    ready >= desired; pending: none ready, none in trouble yet; failed: none ready and one
    is crashing or cannot start; scaling: some ready and the others starting for the first
    time (an ordinary scale-up, nothing wrong); degraded: some ready and another crashing,
    restarting or no longer passing its health check.
    """
    if service.stopped:
        return "stopped"
    present = [r for r in replicas if r.state in _PRESENT]
    ready = sum(1 for r in present if r.state is ReplicaState.READY)
    if any(r.revision != service.revision for r in present):
        return "updating"
    if ready >= service.replicas:
        return "running"
    if ready == 0:
        return "failed" if any(_broken(r) for r in present) else "pending"
    return "degraded" if any(_troubled(r) for r in present) else "scaling"


def _broken(r: ReplicaRecord) -> bool:
    """Crashed or cannot start (the orchestrator flags a failure that repeats as permanent)."""
    return r.state in _BROKEN or bool(r.extra.get("permanent"))


def _troubled(r: ReplicaRecord) -> bool:
    """Not a replica simply starting for the first time."""
    if r.state is ReplicaState.READY:
        return False
    return _broken(r) or r.restarts > 0 or bool(r.reason)


def ready_count(service: ServiceRecord, replicas: Iterable[ReplicaRecord]) -> int:
    """How many replicas, of any revision, serve the service: READY ones, none when stopped.

    A stopped service's replicas are on their way out (drained, then stopped) even while
    the controller's last look still saw them ready, so `list` says 0 at once.
    """
    if service.stopped:
        return 0
    return sum(1 for r in replicas if r.state is ReplicaState.READY)


def endpoints(gateway_url: str, name: str) -> dict[str, str]:
    """The gateway URLs clients call for inference on service ``name``."""
    base = gateway_url.rstrip("/")
    return {
        "tfserving": f"{base}/v1/models/{name}:predict",
        "v2": f"{base}/v2/models/{name}/infer",
    }


def replica_doc(replica: ReplicaRecord) -> dict[str, Any]:
    """A replica as JSON."""
    doc = asdict(replica)
    doc["state"] = replica.state.value
    return doc


def event_doc(event: EventRecord) -> dict[str, Any]:
    """An event as JSON."""
    doc = asdict(event)
    doc["kind"] = event.kind.value
    return doc


def revision_doc(revision: RevisionRecord) -> dict[str, Any]:
    """A revision as JSON: its number, spec and creation time."""
    return {
        "service": revision.service,
        "revision": revision.number,
        "spec": revision.spec,
        "created_at": revision.created_at,
    }


def service_summary(service: ServiceRecord, replicas: list[ReplicaRecord]) -> dict[str, Any]:
    """The short form of a service, as ``GET /api/v1/services`` lists it."""
    return {
        "name": service.name,
        "revision": service.revision,
        "replicas": service.replicas,
        "ready": ready_count(service, replicas),
        "stopped": service.stopped,
        "status": service_status(service, replicas),
        "created_at": service.created_at,
        "updated_at": service.updated_at,
    }


def service_document(
    service: ServiceRecord,
    revision: RevisionRecord,
    replicas: list[ReplicaRecord],
    events: list[EventRecord],
    gateway_url: str,
) -> dict[str, Any]:
    """The full form of a service, as ``GET /api/v1/services/{name}`` returns it."""
    doc = service_summary(service, replicas)
    doc["spec"] = revision.spec
    doc["endpoints"] = endpoints(gateway_url, service.name)
    doc["replica_list"] = [replica_doc(r) for r in sorted(replicas, key=lambda r: r.id)]
    doc["events"] = [event_doc(e) for e in events]
    return doc
