"""The pure half of the controller: desired services and observed replicas in, actions out.

Level-triggered: the diff looks only at the state now, never at what happened before, so
running it again after a crash, a restart or a failed step converges to the same place.

A rolling update falls out of the counting rule: the current revision is asked for its
full count at once, and older revisions keep only as many replicas as the current one is
short of ready ones. As new replicas turn ready the old ones are scaled down (drained
first by the orchestrator), and an update whose new revision never turns ready leaves
the old one serving.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from pier.control.records import ReplicaRecord, ReplicaState


@dataclass(frozen=True)
class Desired:
    """What the store says one service should be."""

    service: str
    revision: int  # current revision
    replicas: int
    stopped: bool


@dataclass(frozen=True)
class Apply:
    """Have ``replicas`` replicas of this revision."""

    service: str
    revision: int
    replicas: int


@dataclass(frozen=True)
class Remove:
    """Drain and stop every replica of this revision.

    ``superseded_by``: the newer revision that now serves in its place, when this removal
    finishes an update (a rollout); None for a stop, a delete or a rollback.
    """

    service: str
    revision: int
    superseded_by: int | None = None


Action = Apply | Remove


def diff(desired: Iterable[Desired], observed: Iterable[ReplicaRecord]) -> list[Action]:
    """The orchestrator calls that bring the observed replicas to the desired state."""
    by_service: dict[str, dict[int, list[ReplicaRecord]]] = defaultdict(lambda: defaultdict(list))
    for r in observed:
        if r.state != ReplicaState.STOPPED:
            by_service[r.service][r.revision].append(r)

    actions: list[Action] = []
    wanted = {d.service: d for d in desired}
    for d in sorted(wanted.values(), key=lambda d: d.service):
        running = by_service.get(d.service, {})
        if d.stopped:
            actions.extend(Remove(d.service, rev) for rev in sorted(running))
            continue
        actions.append(Apply(d.service, d.revision, d.replicas))
        ready_new = _ready(running.get(d.revision, []))
        # Older revisions may keep what the current one still lacks, newest old first.
        allowance = max(0, d.replicas - ready_new)
        for rev in sorted((r for r in running if r != d.revision), reverse=True):
            keep = min(allowance, len(running[rev]))
            allowance -= keep
            if keep == 0:
                by = d.revision if rev < d.revision else None
                actions.append(Remove(d.service, rev, superseded_by=by))
            else:
                actions.append(Apply(d.service, rev, keep))
    for service in sorted(set(by_service) - set(wanted)):
        actions.extend(Remove(service, rev) for rev in sorted(by_service[service]))
    return actions


def _ready(replicas: list[ReplicaRecord]) -> int:
    return sum(1 for r in replicas if r.state == ReplicaState.READY)
