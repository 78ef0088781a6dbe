"""The protocol-neutral request path: resolve, validate, run, filter, count."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TypeVar

from pier.errors import ErrorCode, InvalidInput, PierError
from pier.observe.metrics import Metrics
from pier.serving.execution import request_rows
from pier.serving.model import Array, Model
from pier.serving.modelconfig import ModelConfig
from pier.serving.protocols.bounds import DEFAULT_MAX_ELEMENTS
from pier.serving.repository import ModelRepository
from pier.serving.served import ServedVersion
from pier.serving.status import ServerState, VersionStatus
from pier.serving.tensors import from_numpy_dtype, shape_matches

T = TypeVar("T")


class DataPlane:
    """What every protocol calls, over REST and gRPC alike; knows nothing of HTTP or gRPC.

    The protocol modules reach the repository and the server's state only through here.
    """

    def __init__(
        self,
        repository: ModelRepository,
        metrics: Metrics,
        state: ServerState | None = None,
        max_elements: int = DEFAULT_MAX_ELEMENTS,
    ) -> None:
        self._repository = repository
        #: the largest tensor (in elements) any protocol decodes: ServerSettings.max_elements
        self.max_elements = max_elements
        self.metrics = metrics
        self._state = state if state is not None else ServerState(started=True)
        #: ``resolve(name, version=None, label=None)``: the version a request addresses.
        #: The repository's own method, so that each request makes one call, not two.
        self.resolve = repository.resolve

    # ----- health and lookups ---------------------------------------------------

    def live(self) -> bool:
        """False once the server is draining."""
        return not self._state.draining

    def ready(self) -> bool:
        """True when the server has started, is not draining and (strict) every model serves."""
        return self._state.is_ready(self._repository)

    def model_names(self) -> list[str]:
        return self._repository.model_names()

    def metadata_versions(self, served: ServedVersion, explicit: bool) -> list[str]:
        """The versions a metadata answer lists: the one asked for, or every available one."""
        if explicit:
            return [served.version_str]
        return [s.version_str for s in self._repository.available(served.name)]

    def servable(self, name: str | None = None, version: int | None = None) -> list[ServedVersion]:
        """One addressed version, or (no name) every available version of every model."""
        if name:
            return [self.resolve(name, version)]
        repo = self._repository
        return [s for m in repo.model_names() for s in repo.available(m)]

    def statuses(
        self, name: str, version: int | None = None, label: str | None = None
    ) -> list[VersionStatus]:
        """Load state of each version of a model, or of the version a number or label names."""
        if label is not None:
            version = self.resolve(name, None, label).version
        return self._repository.statuses(name, version)

    def index(self) -> list[tuple[str, VersionStatus | None]]:
        """Every model folder with each version's state (None for a model with no versions)."""
        return self._repository.index()

    async def load(self, name: str, override: ModelConfig | None = None) -> None:
        """Load (or reload) a model, with a config laid over its own when given."""
        await self._repository.load_model(name, override)

    async def unload(self, name: str) -> None:
        await self._repository.unload_model(name)

    # ----- inference --------------------------------------------------------------

    async def infer(
        self,
        served: ServedVersion,
        inputs: Mapping[str, Array],
        protocol: str,
        outputs: list[str] | None = None,
    ) -> dict[str, Array]:
        """Run one request; return the requested outputs (all when ``outputs`` is None).

        The one place that decides where a call runs: a version that runs inline
        (``served.inline``: microsecond calls, unbatched) is called right here on the
        event loop; the others go through their batcher or runner.
        """
        # Failures are counted by the caller (record_failure), which also sees decode errors.
        t0 = time.perf_counter()
        self.validate(served, inputs)
        if served.inline:
            result, compute_s = served.runner.call_inline(inputs)
            selected = result if outputs is None else select_outputs(result, outputs)
            ended = time.perf_counter()
            rows = request_rows(inputs)
            served.metrics.record_success(protocol, ended - t0, 0.0, compute_s, rows, rows, ended)
            return selected
        run = await served.run(inputs)
        selected = run.outputs if outputs is None else select_outputs(run.outputs, outputs)
        ended = time.perf_counter()
        served.metrics.record_success(
            protocol, ended - t0, run.queue_s, run.compute_s, run.batch_rows, run.rows, ended
        )
        return selected

    def record_failure(
        self, served: ServedVersion, protocol: str, exc: BaseException, started: float
    ) -> None:
        """Count a failed request (also one that failed to decode) against its model.

        Every protocol's inference path calls this, and only this, when a request that
        found its model fails; an error outside our tree counts as ``internal``.
        """
        code = exc.code if isinstance(exc, PierError) else ErrorCode.INTERNAL
        served.stats.record_failure(time.perf_counter() - started)
        self.metrics.failed(served.name, served.version, protocol, code)

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

    async def classify(
        self, served: ServedVersion, x: Array, protocol: str
    ) -> tuple[list[str], Array]:
        """Class labels and per-row scores for a feature matrix, in an instance slot, counted."""
        return await self._counted(served, protocol, len(x), lambda m: m.classify(x))

    async def regress(self, served: ServedVersion, x: Array, protocol: str) -> Array:
        """One value per row of a feature matrix, in an instance slot, counted."""
        return await self._counted(served, protocol, len(x), lambda m: m.regress(x))

    async def _counted(
        self, served: ServedVersion, protocol: str, rows: int, method: Callable[[Model], T]
    ) -> T:
        # Not batched (the batcher stacks predict inputs only), but through the same
        # runner as predict: same instance slots, same success accounting.
        t0 = time.perf_counter()
        result, waited, compute = await served.runner.apply(method)
        ended = time.perf_counter()
        served.metrics.record_success(protocol, ended - t0, waited, compute, rows, rows, ended)
        return result


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
