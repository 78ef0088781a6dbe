"""The protocol-neutral request path: resolve, validate, run, filter, count."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from concurrent.futures import Executor

from pier.errors import InvalidInput, PierError
from pier.observe.metrics import Metrics
from pier.serving.model import Array
from pier.serving.repository import ModelRepository
from pier.serving.served import ServedVersion
from pier.serving.tensors import from_numpy_dtype, shape_matches


class DataPlane:
    """What both REST protocols (and later gRPC) call; knows nothing of HTTP."""

    def __init__(self, repository: ModelRepository, metrics: Metrics, executor: Executor) -> None:
        self.repository = repository
        self.metrics = metrics
        self._executor = executor

    def resolve(
        self, name: str, version: int | None = None, label: str | None = None
    ) -> ServedVersion:
        return self.repository.resolve(name, version, label)

    async def infer(
        self,
        served: ServedVersion,
        inputs: Mapping[str, Array],
        protocol: str,
        outputs: list[str] | None = None,
    ) -> dict[str, Array]:
        """Run one request; return the requested outputs (all when ``outputs`` is None)."""
        # Failures are counted by the caller (record_failure), which also sees decode errors.
        t0 = time.perf_counter()
        self.validate(served, inputs)
        result = await served.run(inputs)
        selected = select_outputs(result.outputs, outputs)
        total = time.perf_counter() - t0
        m = served.metrics
        m.success[protocol].inc()
        m.total.observe(total)
        m.queue.observe(result.queue_s)
        m.compute.observe(result.compute_s)
        m.batch.observe(result.batch_rows)
        served.stats.record_success(result.rows, total, result.queue_s, result.compute_s)
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
