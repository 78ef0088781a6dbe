"""Running a model call: inline on the event loop, or in the thread pool, one per instance slot."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import TypeVar

from pier.errors import InternalError, PierError
from pier.serving.model import Array, Model

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(slots=True)
class RunResult:
    """Outputs of one request, with where its time went."""

    outputs: dict[str, Array]
    queue_s: float
    compute_s: float
    batch_rows: int  # rows in the model call that served it
    rows: int  # rows of this request


def _timed(method: Callable[[Model], T], model: Model) -> tuple[T, float]:
    t0 = time.perf_counter()
    try:
        out = method(model)
    except PierError:
        raise
    except Exception as exc:
        raise _call_failed(exc) from exc
    return out, time.perf_counter() - t0


def _call_failed(exc: Exception) -> InternalError:
    # A runtime's own error becomes ours, with its text.
    return InternalError(f"model call failed: {type(exc).__name__}: {exc}")


def request_rows(inputs: Mapping[str, Array]) -> int:
    """Rows in a request: dim 0 of its first input (1 for scalars, 0 with no inputs)."""
    for arr in inputs.values():
        return len(arr) if arr.ndim else 1  # len() is dim 0, without building .shape
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

    def call_inline(self, inputs: Mapping[str, Array]) -> tuple[dict[str, Array], float]:
        """Run once on the event loop (``inline`` runners); return (outputs, seconds computing).

        A plain call, not a coroutine: the request path of a microsecond model calls it
        directly, with no RunResult, so each request pays for as few Python frames as it can.
        """
        self.executions += 1
        # _timed, written out: one Python call less per request
        t0 = time.perf_counter()
        try:
            out = self._free[0].predict(inputs)
        except PierError:
            raise
        except Exception as exc:
            raise _call_failed(exc) from exc
        return out, time.perf_counter() - t0

    async def call(self, inputs: Mapping[str, Array]) -> tuple[dict[str, Array], float, float]:
        """Run ``predict`` once; return (outputs, seconds waited for a slot, seconds computing)."""
        if self.inline:
            out, compute = self.call_inline(inputs)
            return out, 0.0, compute
        return await self.apply(lambda model: model.predict(inputs))

    async def apply(self, method: Callable[[Model], T]) -> tuple[T, float, float]:
        """Call ``method(instance)`` in an instance slot; return (result, seconds waited, computing).

        Every model call goes through here or ``call_inline`` (predict, classify, regress
        alike), so an instance that is not thread-safe never runs two calls at once.
        """
        self.executions += 1
        if self.inline:
            out, compute = _timed(method, self._free[0])
            return out, 0.0, compute
        t0 = time.perf_counter()
        async with self._slots:
            waited = time.perf_counter() - t0
            model = self._free.pop()
            try:
                loop = asyncio.get_running_loop()
                out, compute = await loop.run_in_executor(self._executor, _timed, method, model)
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
