"""The pure diff: desired services and observed replicas in, orchestrator actions out."""

from __future__ import annotations

from pier.control.reconciler import Apply, Desired, Remove, diff
from pier.control.records import ReplicaRecord, ReplicaState

R, S, B, D = ReplicaState.READY, ReplicaState.STARTING, ReplicaState.BACKOFF, ReplicaState.DRAINING


def rep(service: str, revision: int, state: ReplicaState, n: int = 0) -> ReplicaRecord:
    return ReplicaRecord(
        id=f"{service}-{revision}-{state}-{n}", service=service, revision=revision, state=state
    )


def test_new_service_gets_its_replicas() -> None:
    assert diff([Desired("a", 1, 3, False)], []) == [Apply("a", 1, 3)]


def test_steady_state_is_idempotent() -> None:
    observed = [rep("a", 1, R, i) for i in range(2)]
    assert diff([Desired("a", 1, 2, False)], observed) == [Apply("a", 1, 2)]


def test_rolling_update_keeps_old_replicas_until_new_ones_are_ready() -> None:
    want = [Desired("a", 2, 2, False)]
    old = [rep("a", 1, R, 0), rep("a", 1, R, 1)]
    # nothing of revision 2 ready yet: revision 1 keeps both
    assert diff(want, [*old, rep("a", 2, S, 0), rep("a", 2, S, 1)]) == [
        Apply("a", 2, 2),
        Apply("a", 1, 2),
    ]
    # one new ready: one old may go
    assert diff(want, [*old, rep("a", 2, R, 0), rep("a", 2, S, 1)]) == [
        Apply("a", 2, 2),
        Apply("a", 1, 1),
    ]
    # all new ready: the old revision is removed, as a finished rollout
    assert diff(want, [*old, rep("a", 2, R, 0), rep("a", 2, R, 1)]) == [
        Apply("a", 2, 2),
        Remove("a", 1, superseded_by=2),
    ]


def test_broken_new_revision_leaves_the_old_one_serving() -> None:
    want = [Desired("a", 2, 1, False)]
    observed = [rep("a", 1, R), rep("a", 2, B)]
    assert diff(want, observed) == [Apply("a", 2, 1), Apply("a", 1, 1)]


def test_allowance_goes_to_the_newest_old_revision_first() -> None:
    want = [Desired("a", 3, 2, False)]
    observed = [rep("a", 1, R, 0), rep("a", 2, R, 0), rep("a", 2, R, 1)]
    assert diff(want, observed) == [
        Apply("a", 3, 2),
        Apply("a", 2, 2),
        Remove("a", 1, superseded_by=3),
    ]


def test_rollback_to_an_older_number_is_not_called_superseded() -> None:
    # a revision newer than the current one (e.g. after a manual rollback) is just removed
    want = [Desired("a", 1, 1, False)]
    assert diff(want, [rep("a", 1, R), rep("a", 2, R)]) == [
        Apply("a", 1, 1),
        Remove("a", 2, superseded_by=None),
    ]


def test_stopped_and_deleted_services_lose_every_replica() -> None:
    observed = [rep("a", 1, R), rep("a", 2, D), rep("gone", 4, R)]
    assert diff([Desired("a", 2, 3, True)], observed) == [
        Remove("a", 1),
        Remove("a", 2),
        Remove("gone", 4),
    ]


def test_scale_to_zero_removes_old_revisions_at_once() -> None:
    assert diff([Desired("a", 2, 0, False)], [rep("a", 1, R)]) == [
        Apply("a", 2, 0),
        Remove("a", 1, superseded_by=2),
    ]


def test_stopped_replica_records_are_ignored() -> None:
    observed = [rep("a", 1, ReplicaState.STOPPED)]
    assert diff([Desired("a", 1, 1, False)], observed) == [Apply("a", 1, 1)]
