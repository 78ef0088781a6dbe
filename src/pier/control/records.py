"""What the control plane stores: services, revisions, replicas and events, as plain records.

These are the shapes the store returns and the API serialises; the store module owns how
they map onto tables.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

#: The largest integer the databases store (SQLite INTEGER, PostgreSQL BIGINT): a number
#: from outside past it can match nothing, and must not reach the driver (OverflowError).
INT64_MAX = 2**63 - 1


class ReplicaState(StrEnum):
    """Where a replica is in its life."""

    STARTING = "starting"  # process started, health endpoint not ready yet
    READY = "ready"  # /v2/health/ready answered 200: the gateway may route to it
    DRAINING = "draining"  # taken out of routing, finishing in-flight work before SIGTERM
    BACKOFF = "backoff"  # died; waiting for its exponential-backoff restart
    FAILED = "failed"  # gave up restarting (only with a restart limit) or cannot start at all
    STOPPED = "stopped"  # stopped on purpose and gone


class EventKind(StrEnum):
    """Every kind of event the control plane records."""

    CREATED = "created"
    UPDATED = "updated"
    SCALED = "scaled"
    STOPPED = "stopped"
    STARTED = "started"
    DELETED = "deleted"
    REPLICA_STARTED = "replica_started"
    REPLICA_READY = "replica_ready"
    REPLICA_EXITED = "replica_exited"
    REPLICA_OOM_KILLED = "replica_oom_killed"
    REPLICA_RESTARTED = "replica_restarted"
    REPLICA_STOPPED = "replica_stopped"
    REPLICA_ADOPTED = "replica_adopted"
    ROLLOUT_COMPLETE = "rollout_complete"
    RECONCILE_FAILED = "reconcile_failed"


@dataclass(frozen=True)
class ServiceRecord:
    """A service as stored: its current revision and what the user asked for."""

    name: str
    revision: int  # the current (newest) revision number
    replicas: int  # desired replica count (the spec's, or the last `scale`)
    stopped: bool  # `pier stop` sets it: desired replicas are kept but none run
    created_at: float  # unix seconds
    updated_at: float


@dataclass(frozen=True)
class RevisionRecord:
    """An immutable snapshot of a service's spec, numbered 1, 2, 3… per service."""

    service: str
    number: int
    spec: dict[str, Any]  # ServiceSpec.model_dump(mode="json")
    created_at: float


@dataclass(frozen=True)
class ReplicaRecord:
    """A replica as last observed by the controller (the orchestrator owns the process)."""

    id: str
    service: str
    revision: int
    state: ReplicaState
    address: str = ""  # "127.0.0.1:PORT"; empty until known
    pid: int | None = None
    restarts: int = 0
    exit_code: int | None = None
    reason: str = ""  # why it last exited or failed, in words
    limits: str = ""  # how resources are enforced, in words ("cgroup v2: ...", "rlimit ...")
    started_at: float = 0.0
    updated_at: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EventRecord:
    """Something that happened to a service or one of its replicas."""

    id: int
    service: str
    kind: EventKind
    message: str
    time: float
    revision: int | None = None
    replica: str | None = None
