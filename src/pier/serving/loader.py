"""Building a servable version from a folder: runtime choice, instances, execution mode."""

from __future__ import annotations

import logging
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pier.errors import ModelLoadError, PierError
from pier.serving.model import Array, Model
from pier.serving.modelconfig import ModelConfig
from pier.serving.runtimes import infer_runtime, model_class
from pier.serving.tensors import TensorSpec, to_numpy_dtype

log = logging.getLogger(__name__)

# A call cheaper than this runs on the event loop: a thread hand-off costs 30-50 µs.
INLINE_THRESHOLD_S = 100e-6


@dataclass(slots=True)
class Built:
    """Loaded instances of one version and how to call them."""

    instances: list[Model]
    inline: bool
    warmup_s: float | None


def build_version(path: Path, config: ModelConfig) -> Built:
    """Load a version folder (blocking: call it from a worker thread)."""
    runtime = config.runtime or infer_runtime(path)
    cls = model_class(runtime)
    first = _load_one(cls, path, config)
    instances = [first]
    for _ in range(config.instances - 1):
        # the instance decides: a user Python model may declare itself thread-safe
        instances.append(first if first.thread_safe else _load_one(cls, path, config))
    if config.dynamic_batching is not None and not first.batched:
        raise ModelLoadError(
            f"{path}: dynamic_batching is set but the model has no batch dimension "
            "(its inputs do not all start with a variable dim)"
        )
    warm = _warmup(first)
    if config.execution == "inline":
        inline = True
    elif config.execution == "thread":
        inline = False
    else:
        inline = warm is not None and warm < INLINE_THRESHOLD_S
    return Built(instances, inline, warm)


def _load_one(cls: type[Model], path: Path, config: ModelConfig) -> Model:
    model = cls(path, config)
    try:
        model.load()
    except PierError:
        raise
    except Exception as exc:
        raise ModelLoadError(f"{path}: {type(exc).__name__}: {exc}") from exc
    return model


def sample_input(spec: TensorSpec) -> Array | None:
    """A zero tensor of batch 1 for a spec, or None when a dim is unknown."""
    dims = list(spec.shape)
    if dims and dims[0] == -1:
        dims[0] = 1
    if any(d < 1 for d in dims):
        return None
    if spec.datatype == "BYTES":
        return np.full(dims, b"", dtype=object)
    return np.zeros(dims, dtype=to_numpy_dtype(spec.datatype))


def _warmup(model: Model) -> float | None:
    """Run a few zero requests; return the fastest call in seconds, None if not possible."""
    if not model.inputs:
        return None
    sample: dict[str, Any] = {}
    for spec in model.inputs:
        arr = sample_input(spec)
        if arr is None:
            return None
        sample[spec.name] = arr
    times = []
    try:
        for _ in range(5):
            t0 = time.perf_counter()
            model.predict(sample)
            times.append(time.perf_counter() - t0)
    except Exception as exc:  # a model that rejects zeros is still a valid model
        log.info("warm-up skipped for %s: %s", model.path, exc)
        return None
    return statistics.median(times)
