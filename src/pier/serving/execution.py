"""Running a model call: inline on the event loop, or in the thread pool, one per instance slot."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from concurrent.futures import Executor
from dataclasses import dataclass

from pier.errors import InternalError, PierError
from pier.serving.model import Array, Model

log = logging.getLogger(__name__)


@dataclass(slots=True)
class RunResult:
    """Outputs of one request, with where its time went."""

    outputs: dict[str, Array]
    queue_s: float
    compute_s: float
    batch_rows: int  # rows in the model call that served it
    rows: int  # rows of this request


def _timed_predict(model: Model, inputs: Mapping[str, Array]) -> tuple[dict[str, Array], float]:
    t0 = time.perf_counter()
    try:
        out = model.predict(inputs)
    except PierError:
        raise
    except Exception as exc:  # a runtime's own error becomes ours, with its text
        raise InternalError(f"model call failed: {type(exc).__name__}: {exc}") from exc
    return out, time.perf_counter() - t0


def request_rows(inputs: Mapping[str, Array]) -> int:
    """Rows in a request: dim 0 of its first input (1 for scalars, 0 with no inputs)."""
    for arr in inputs.values():
        return int(arr.shape[0]) if arr.ndim else 1
    return 0


class Runner:
    """Calls a model version's ``predict`` with at most ``len(instances)`` calls at once.

    ``instances`` holds one object per slot: the same object repeated for thread-safe
    runtimes, separate copies otherwise. ``inline`` models (microsecond calls, cheaper
    than a thread hand-off) run on the event loop itself.
    """

    def __init__(self, instances: list[Model], executor: Executor, inline: bool) -> None:
        self.instances = instances
        self.inline = inline
        self.concurrency = len(instances)
        self._executor = executor
        self._free = list(instances)
        self._slots = asyncio.Semaphore(len(instances))
        #: model calls made (a batch counts once), for the statistics extension
        self.executions = 0

    async def call(self, inputs: Mapping[str, Array]) -> tuple[dict[str, Array], float, float]:
        """Run once; return (outputs, seconds waited for a slot, seconds computing)."""
        self.executions += 1
        if self.inline:
            out, compute = _timed_predict(self._free[0], inputs)
            return out, 0.0, compute
        t0 = time.perf_counter()
        async with self._slots:
            waited = time.perf_counter() - t0
            model = self._free.pop()
            try:
                loop = asyncio.get_running_loop()
                out, compute = await loop.run_in_executor(
                    self._executor, _timed_predict, model, inputs
                )
            finally:
                self._free.append(model)
        return out, waited, compute

    async def run(self, inputs: Mapping[str, Array]) -> RunResult:
        out, waited, compute = await self.call(inputs)
        rows = request_rows(inputs)
        return RunResult(out, waited, compute, rows, rows)

    async def close(self) -> None:
        """Wait for calls in flight to finish."""
        for _ in range(self.concurrency):
            await self._slots.acquire()
