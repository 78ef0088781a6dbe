"""Replica choice (power of two choices, least outstanding) and passive ejection, no servers."""

from __future__ import annotations

import random
from collections import Counter

from pier.gateway.balancer import ReplicaLoad, choose, record_failure, record_success


class Node(ReplicaLoad):
    __slots__ = ("name",)

    def __init__(self, name: str, inflight: int = 0) -> None:
        super().__init__()
        self.name = name
        self.inflight = inflight


def test_one_replica_is_always_chosen() -> None:
    only = Node("a", inflight=50)
    assert choose([only], 0.0, random.Random(1)) is only


def test_the_less_busy_of_two_wins() -> None:
    a, b = Node("a", 5), Node("b", 1)
    rng = random.Random(7)
    assert all(choose([a, b], 0.0, rng) is b for _ in range(50))


def test_ties_spread_over_all_replicas() -> None:
    nodes = [Node(n) for n in "abcd"]
    rng = random.Random(3)
    seen = Counter(choose(nodes, 0.0, rng).name for _ in range(4000))
    assert set(seen) == set("abcd")
    assert min(seen.values()) > 700


def test_power_of_two_never_picks_the_busiest_of_three() -> None:
    nodes = [Node("idle", 0), Node("mid", 3), Node("busy", 9)]
    rng = random.Random(11)
    picks = Counter(choose(nodes, 0.0, rng).name for _ in range(3000))
    assert picks["busy"] == 0
    assert picks["idle"] > picks["mid"] > 0


def test_choice_is_reproducible_with_a_seeded_rng() -> None:
    nodes = [Node(n) for n in "abcde"]
    first = [choose(nodes, 0.0, random.Random(42)).name for _ in range(5)]
    again = [choose(nodes, 0.0, random.Random(42)).name for _ in range(5)]
    assert first == again


def test_ejected_replicas_are_left_out_until_their_window_ends() -> None:
    a, b = Node("a"), Node("b")
    for t in (0.0, 1.0):
        assert not record_failure(a, t, eject_after=3, eject_seconds=10.0)
    assert record_failure(a, 2.0, eject_after=3, eject_seconds=10.0)
    assert a.ejected(2.0) and a.ejected(11.9) and not a.ejected(12.0)
    rng = random.Random(5)
    assert {choose([a, b], 5.0, rng).name for _ in range(100)} == {"b"}
    # the window is over: a is a candidate again
    assert "a" in {choose([a, b], 12.5, rng).name for _ in range(100)}


def test_a_returning_replica_that_fails_again_is_ejected_at_once() -> None:
    a = Node("a")
    for t in range(3):
        record_failure(a, float(t), 3, 10.0)
    assert a.ejected(5.0)
    assert record_failure(a, 20.0, 3, 10.0)  # back after the window, one failure: out again
    assert a.ejected(29.0)


def test_a_success_ends_the_failure_run() -> None:
    a = Node("a")
    record_failure(a, 0.0, 3, 10.0)
    record_failure(a, 0.0, 3, 10.0)
    record_success(a)
    assert not record_failure(a, 0.0, 3, 10.0)
    assert not a.ejected(0.0)


def test_non_consecutive_failures_do_not_eject() -> None:
    a = Node("a")
    for _ in range(10):
        assert not record_failure(a, 0.0, 3, 10.0)
        record_failure(a, 0.0, 3, 10.0)
        record_success(a)
    assert not a.ejected(0.0)


def test_when_all_are_ejected_all_are_used() -> None:
    a, b = Node("a"), Node("b")
    for node in (a, b):
        for _ in range(3):
            record_failure(node, 0.0, 3, 10.0)
    rng = random.Random(2)
    assert {choose([a, b], 1.0, rng).name for _ in range(100)} == {"a", "b"}
