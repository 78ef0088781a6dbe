"""Replica choice: least outstanding requests by power of two choices, and passive ejection.

Pure functions over ``ReplicaLoad``; the caller passes the time and the random source.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import TypeVar


class ReplicaLoad:
    """What the balancer knows of one replica: requests in flight and recent failures."""

    __slots__ = ("ejected_until", "failures", "inflight")

    def __init__(self) -> None:
        self.inflight = 0
        #: consecutive failures; a success resets it
        self.failures = 0
        #: clock time until which the replica is left out; 0.0 when it is not ejected
        self.ejected_until = 0.0

    def ejected(self, now: float) -> bool:
        return self.ejected_until > now


R = TypeVar("R", bound=ReplicaLoad)


def choose(replicas: Sequence[R], now: float, rng: random.Random) -> R:
    """Pick one of ``replicas`` (not empty): two at random among the non-ejected, the less busy.

    When every replica is ejected, all of them are candidates again: a request sent to a
    replica that failed recently may still succeed, one refused here cannot.
    """
    n = len(replicas)
    if n == 1:
        return replicas[0]
    if n == 2 and not (replicas[0].ejected_until or replicas[1].ejected_until):
        # The common pair, neither ever ejected: both are the "two choices"; no list to build.
        a, b = replicas
        if a.inflight == b.inflight:
            return a if rng.random() < 0.5 else b
        return a if a.inflight < b.inflight else b
    candidates = [r for r in replicas if r.ejected_until <= now]
    m = len(candidates)
    if m == 1:
        return candidates[0]
    if m == 0:
        candidates, m = list(replicas), n
    i = int(rng.random() * m)
    j = int(rng.random() * (m - 1))
    if j >= i:
        j += 1
    a, b = candidates[i], candidates[j]
    return b if b.inflight < a.inflight else a


def record_success(load: ReplicaLoad) -> None:
    """The replica answered: its failure run ends, and an ejection ends early."""
    load.failures = 0
    load.ejected_until = 0.0


def record_failure(load: ReplicaLoad, now: float, eject_after: int, eject_seconds: float) -> bool:
    """Count one failure; eject the replica after ``eject_after`` in a row. True if ejected now.

    The count is not reset by the ejection: a replica that comes back after
    ``eject_seconds`` and fails again is ejected again at once, without needing
    ``eject_after`` more failed requests.
    """
    load.failures += 1
    if load.failures >= eject_after and load.ejected_until <= now:
        load.ejected_until = now + eject_seconds
        return True
    return False
