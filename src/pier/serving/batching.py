"""Dynamic batching: stack concurrent requests along dim 0, run them once, split the outputs.

A batch is cut when it holds ``max_batch_size`` rows, when its row count reaches a
preferred size, or when its oldest request has waited ``max_queue_delay_ms``. Only
requests whose inputs agree in names, datatypes and non-batch dims are stacked
together; the others wait for a batch of their own kind, so every request is served.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pier.errors import InternalError, ResourceExhausted, Unavailable
from pier.serving.execution import Runner, RunResult
from pier.serving.model import Array
from pier.serving.modelconfig import DynamicBatching

log = logging.getLogger(__name__)

_Key = tuple[tuple[str, str, tuple[int, ...]], ...]


def batch_key(inputs: Mapping[str, Array]) -> _Key | None:
    """What must agree for two requests to stack; None if the request has no batch dim."""
    key = []
    for name, arr in inputs.items():
        if arr.ndim == 0:
            return None
        key.append((name, arr.dtype.str, arr.shape[1:]))
    return tuple(key)


@dataclass(slots=True)
class _Pending:
    inputs: Mapping[str, Array]
    rows: int
    key: _Key | None
    enqueued: float
    future: asyncio.Future[RunResult] = field(repr=False)


class Batcher:
    """Collects requests for one model version and feeds stacked batches to its runner."""

    def __init__(self, runner: Runner, config: DynamicBatching, name: str) -> None:
        self._runner = runner
        self._max = config.max_batch_size
        self._delay = config.max_queue_delay_ms / 1000.0
        self._preferred = frozenset(config.preferred_batch_sizes)
        self._max_queue = config.max_queue_size
        self._name = name
        self._pending: list[_Pending] = []
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(runner.concurrency)
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._loop_task = asyncio.get_running_loop().create_task(
            self._collect(), name=f"batcher:{name}"
        )

    async def run(self, inputs: Mapping[str, Array]) -> RunResult:
        """Queue one request and wait for its share of a batch."""
        if self._closed:
            raise Unavailable(f"model '{self._name}' is unloading")
        if len(self._pending) >= self._max_queue:
            raise ResourceExhausted(
                f"model '{self._name}': batching queue is full ({self._max_queue} requests)"
            )
        key = batch_key(inputs)
        rows = int(next(iter(inputs.values())).shape[0]) if key is not None and inputs else 0
        if key is None or rows == 0 or rows > self._max:
            return await self._runner.run(inputs)  # cannot stack: run it alone
        fut: asyncio.Future[RunResult] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(inputs, rows, key, time.perf_counter(), fut))
        self._wake.set()
        return await fut

    def _ready_rows(self) -> int:
        head = self._pending[0].key
        rows = 0
        for p in self._pending:
            if p.key == head:
                if rows + p.rows > self._max:
                    break
                rows += p.rows
        return rows

    async def _collect(self) -> None:
        while True:
            await self._wake.wait()
            if not self._pending:
                self._wake.clear()
                if self._closed:
                    return
                continue
            await self._slots.acquire()
            # Wait for more rows until the batch is full, preferred, or the oldest is due.
            while self._pending:
                rows = self._ready_rows()
                if rows >= self._max or rows in self._preferred:
                    break
                remaining = self._pending[0].enqueued + self._delay - time.perf_counter()
                if remaining <= 0 or self._closed:
                    break
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), remaining)
            batch = self._take()
            if not batch:
                self._slots.release()
                continue
            task = asyncio.get_running_loop().create_task(self._execute(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    def _take(self) -> list[_Pending]:
        if not self._pending:
            return []
        head = self._pending[0].key
        batch: list[_Pending] = []
        rest: list[_Pending] = []
        rows = 0
        for p in self._pending:
            if p.key == head and rows + p.rows <= self._max:
                batch.append(p)
                rows += p.rows
            else:
                rest.append(p)
        self._pending = rest
        if rest:
            self._wake.set()
        return batch

    async def _execute(self, batch: list[_Pending]) -> None:
        try:
            live = [p for p in batch if not p.future.done()]  # drop cancelled callers
            if not live:
                return
            started = time.perf_counter()
            names = list(live[0].inputs)
            if len(live) == 1:
                stacked: Mapping[str, Array] = live[0].inputs
            else:
                stacked = {n: np.concatenate([p.inputs[n] for p in live]) for n in names}
            try:
                outputs, _, compute = await self._runner.call(stacked)
                parts = _split(outputs, [p.rows for p in live])
            except Exception as exc:
                for p in live:
                    if not p.future.done():
                        p.future.set_exception(exc)
                return
            total = sum(p.rows for p in live)
            for p, out in zip(live, parts, strict=True):
                if not p.future.done():
                    p.future.set_result(RunResult(out, started - p.enqueued, compute, total, p.rows))
        finally:
            self._slots.release()

    async def close(self) -> None:
        """Serve what is queued, then stop collecting."""
        self._closed = True
        self._wake.set()
        with contextlib.suppress(asyncio.CancelledError):
            await self._loop_task
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)


def _split(outputs: dict[str, Array], rows: list[int]) -> list[dict[str, Array]]:
    total = sum(rows)
    bounds: list[int] = []
    acc = 0
    for r in rows[:-1]:
        acc += r
        bounds.append(acc)
    per_request: list[dict[str, Any]] = [{} for _ in rows]
    for name, arr in outputs.items():
        if arr.ndim == 0 or arr.shape[0] != total:
            got = "a scalar" if arr.ndim == 0 else f"{arr.shape[0]} rows"
            raise InternalError(
                f"output '{name}' has {got} for a batch of {total}: the model does not keep "
                "dim 0 as the batch; turn dynamic_batching off for it"
            )
        for i, piece in enumerate(np.split(arr, bounds)):
            per_request[i][name] = piece
    return per_request
