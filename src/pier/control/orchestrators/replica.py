"""One local replica as the supervisor tracks it, and the pure rules for its restarts."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from pier.control.orchestrators.base import RevisionPlan
from pier.control.records import ReplicaState

#: a replica ready this long has its backoff reset
STABLE_SECONDS = 30.0
#: failed health checks in a row before a ready replica counts as not ready
HEALTH_FAILURES = 3
#: seconds between looks at a starting replica's model load state
LOAD_CHECK_SECONDS = 1.0
#: starts in a row that fail the same way, never ready, before the failure counts as permanent
PERMANENT_AFTER = 2


def is_permanent(ever_ready: bool, repeats: int) -> bool:
    """Whether a replica's failure is one no restart will fix, from how it has failed so far.

    A replica that never served and failed the same way (same reason) on each of its last
    PERMANENT_AFTER starts meets a deterministic cause: a missing or unreadable model, a file
    that cannot load, an unknown runtime. Transient causes (a slow store, a lost race for a
    port) rarely repeat word for word. The replica keeps restarting with backoff anyway, in
    case the cause goes away; the flag is what tells a waiting client to stop waiting.
    """
    return not ever_ready and repeats >= PERMANENT_AFTER


def load_error(index: object, model: str) -> str:
    """From a replica's V2 repository index: the load error when every version of ``model``
    failed to load; "" while any may still load (or the index says nothing)."""
    entries = index if isinstance(index, list) else []
    mine = [e for e in entries if isinstance(e, dict) and e.get("name") == model]
    # "not loaded" is a model the server has not got to yet (a slow scan or download):
    # only a version whose load failed carries its error as the reason.
    if mine and all(
        e.get("state") == "UNAVAILABLE" and e.get("reason") not in (None, "", "not loaded")
        for e in mine
    ):
        return str(mine[-1]["reason"])
    return ""


def backoff_delay(failures: int, initial: float, maximum: float) -> float:
    """Seconds to wait before restart number ``failures`` in a row (1, 2, …): doubling, capped."""
    return float(min(maximum, initial * 2.0 ** max(0, failures - 1)))


@dataclass
class Replica:
    """One replica as the orchestrator tracks it (mutable; observe() copies it out)."""

    id: str
    plan: RevisionPlan
    port: int
    state: ReplicaState = ReplicaState.STARTING
    pid: int | None = None
    ticks: int | None = None  # /proc start time: tells our process from a reused pid
    child: bool = True  # we spawned it (waitpid works) rather than adopted it
    restarts: int = 0
    failures: int = 0  # exits in a row, for the backoff
    exit_code: int | None = None
    reason: str = ""
    limits: str = ""
    started_at: float = 0.0
    updated_at: float = 0.0
    ready_since: float | None = None
    ever_ready: bool = False
    last_failure: str = ""  # the reason of the last exit, to see a failure repeat
    repeats: int = 0  # exits in a row with that same reason
    health_failures: int = 0
    oom_base: int = 0
    command: list[str] = field(default_factory=list)
    cpus: tuple[int, ...] = ()
    gpus: tuple[int, ...] = ()
    task: asyncio.Task[None] | None = None
    stopping: bool = False

    @property
    def key(self) -> tuple[str, int]:
        return (self.plan.service, self.plan.revision)
