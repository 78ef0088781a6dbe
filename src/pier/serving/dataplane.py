"""The protocol-neutral request path: resolve, validate, run, filter, count."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from concurrent.futures import Executor

from pier.errors import InternalError, InvalidInput, PierError
from pier.observe.metrics import Metrics
from pier.serving.execution import request_rows
from pier.serving.model import Array
from pier.serving.protocols.bounds import DEFAULT_MAX_ELEMENTS
from pier.serving.repository import ModelRepository
from pier.serving.served import ServedVersion
from pier.serving.tensors import from_numpy_dtype, shape_matches


class DataPlane:
    """What every protocol calls, over REST and gRPC alike; knows nothing of HTTP."""

    def __init__(
        self,
        repository: ModelRepository,
        metrics: Metrics,
        executor: Executor,
        max_elements: int = DEFAULT_MAX_ELEMENTS,
    ) -> None:
        self.repository = repository
        #: the largest tensor (in elements) any protocol decodes: ServerSettings.max_elements
        self.max_elements = max_elements
        self.metrics = metrics
        self._executor = executor
        #: ``resolve(name, version=None, label=None)``: the version a request addresses.
        #: The repository's own method, so that each request makes one call, not two.
        self.resolve = repository.resolve

    async def infer(
        self,
        served: ServedVersion,
        inputs: Mapping[str, Array],
        protocol: str,
        outputs: list[str] | None = None,
    ) -> dict[str, Array]:
        """Run one request; return the requested outputs (all when ``outputs`` is None)."""
        # Failures are counted by the caller (record_failure), which also sees decode errors.
        if served.inline:
            return self.infer_inline(served, inputs, protocol, outputs)
        t0 = time.perf_counter()
        self.validate(served, inputs)
        run = await served.run(inputs)
        selected = run.outputs if outputs is None else select_outputs(run.outputs, outputs)
        ended = time.perf_counter()
        total_s = ended - t0
        served.metrics.record_success(
            protocol, total_s, run.queue_s, run.compute_s, run.batch_rows, run.rows, ended
        )
        return selected

    def infer_inline(
        self,
        served: ServedVersion,
        inputs: Mapping[str, Array],
        protocol: str,
        outputs: list[str] | None = None,
    ) -> dict[str, Array]:
        """``infer`` for a version that runs on the event loop (``served.inline``), as a plain call.

        A microsecond model costs less than the coroutines around it: callers on the event
        loop that see ``served.inline`` call this and await nothing.
        """
        if not served.inline:
            raise InternalError(f"model '{served.name}' does not run inline")
        t0 = time.perf_counter()
        self.validate(served, inputs)
        result, compute_s = served.runner.call_inline(inputs)
        selected = result if outputs is None else select_outputs(result, outputs)
        ended = time.perf_counter()
        total_s = ended - t0
        rows = request_rows(inputs)
        served.metrics.record_success(protocol, total_s, 0.0, compute_s, rows, rows, ended)
        return selected

    def record_failure(
        self, served: ServedVersion, protocol: str, exc: PierError, seconds: float = 0.0
    ) -> None:
        """Count a failed request (also one that failed to decode) against its model."""
        served.stats.record_failure(seconds)
        self.metrics.failed(served.name, served.version, protocol, exc.code)

    def validate(self, served: ServedVersion, inputs: Mapping[str, Array]) -> None:
        """Check names, datatypes and shapes against the model's declared inputs."""
        expected = served.expected
        if not expected:
            return  # the model declares nothing: pass everything through
        for name, arr in inputs.items():
            want = expected.get(name)
            if want is None:
                raise InvalidInput(
                    f"model '{served.name}' has no input '{name}'; its inputs are: "
                    + ", ".join(expected)
                )
            dtype, shape, datatype = want
            if arr.dtype != dtype and not (dtype.kind == "O" and arr.dtype.kind in "OSU"):
                raise InvalidInput(
                    f"input '{name}': datatype {_name(arr)} does not match the model's {datatype}"
                )
            if not shape_matches(shape, arr.shape):
                raise InvalidInput(
                    f"input '{name}': shape {list(arr.shape)} does not match the model's "
                    f"{list(shape)} (-1 = any size)"
                )
        if len(inputs) != len(expected):
            missing = [n for n in expected if n not in inputs]
            raise InvalidInput(
                f"model '{served.name}' needs input(s) missing from the request: "
                + ", ".join(missing)
            )

    async def classify(self, served: ServedVersion, x: Array) -> tuple[list[str], Array]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, served.model.classify, x)

    async def regress(self, served: ServedVersion, x: Array) -> Array:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, served.model.regress, x)


def select_outputs(outputs: dict[str, Array], wanted: list[str] | None) -> dict[str, Array]:
    if wanted is None:
        return outputs
    missing = [n for n in wanted if n not in outputs]
    if missing:
        raise InvalidInput(
            f"unknown output(s) {', '.join(repr(n) for n in missing)}; the model's outputs are: "
            + ", ".join(outputs)
        )
    return {n: outputs[n] for n in wanted}


def _name(arr: Array) -> str:
    try:
        return from_numpy_dtype(arr.dtype)
    except PierError:
        return str(arr.dtype)
