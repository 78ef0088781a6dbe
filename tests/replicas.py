"""Replica records planted in a real store the way the controller writes them: sync_replicas."""

from __future__ import annotations

from pier.control.records import ReplicaRecord
from pier.control.store import Store


def observe(store: Store, *records: ReplicaRecord) -> None:
    """Store these records as the controller's latest observation, the others left as they are."""
    ids = {r.id for r in records}
    kept = [r for r in store.list_replicas() if r.id not in ids]
    store.sync_replicas([*kept, *records])
