"""LightGBM runtime: serves a Booster saved as text (``model.txt`` or ``*.lgb``).

The input ``input`` is a feature matrix [-1, num_feature] (FP64; other numeric dtypes are
accepted as they are); the output ``predict`` is FP64, [-1] for most objectives and
[-1, num_class] for multiclass ones.

Parameters (``parameters:`` in config.yaml):

- ``num_threads``: OpenMP threads per prediction (0, the default, lets LightGBM choose)
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pier.errors import InternalError, InvalidInput, ModelLoadError, Unsupported
from pier.serving.model import Array, Model
from pier.serving.modelconfig import ModelConfig
from pier.serving.tensors import TensorSpec, to_numpy_dtype

_CLASSIFIERS = ("binary", "multiclass", "multiclassova")
_REGRESSIONS = frozenset(
    (
        "regression",
        "regression_l1",
        "huber",
        "fair",
        "poisson",
        "quantile",
        "mape",
        "gamma",
        "tweedie",
    )
)


def _find_model_file(folder: Path) -> Path:
    preferred = folder / "model.txt"
    if preferred.is_file():
        return preferred
    found = sorted(p for p in folder.glob("*.lgb") if p.is_file())
    if len(found) == 1:
        return found[0]
    if not found:
        raise ModelLoadError(f"{folder}: no model.txt or .lgb file found")
    names = ", ".join(p.name for p in found)
    raise ModelLoadError(f"{folder}: several .lgb files ({names}); keep one or name it model.txt")


def _objective_in_header(file: Path) -> str:
    # The header line looks like "objective=multiclass num_class:3"; it sits before the
    # first tree, so there is no need to read (or dump) the whole model.
    with file.open("r", encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("objective="):
                words = line.removeprefix("objective=").split()
                return words[0] if words else ""
            if line.startswith("Tree="):
                break
    return ""


class LightGBMModel(Model):
    """A LightGBM Booster predicting on numpy arrays."""

    runtime = "lightgbm"
    platform = "lightgbm"
    # Concurrent predictions on one Booster write shared predictor state in the native
    # library (LightGBM issue #6142); one call already uses every OpenMP thread.
    thread_safe = False

    def __init__(self, path: Path, config: ModelConfig) -> None:
        super().__init__(path, config)
        self._booster: Any = None
        self._objective = ""
        self._num_class = 1
        self._predict_args: dict[str, Any] = {}
        self._out_name = "predict"
        self._out_dtype: np.dtype[Any] = np.dtype(np.float64)

    def load(self) -> None:
        file = _find_model_file(self.path)
        threads = self.config.parameters.get("num_threads", 0)
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
            raise ModelLoadError(
                f"{self.path}: parameters.num_threads must be a non-negative integer, got {threads!r}"
            )
        self._predict_args = {"num_threads": threads} if threads else {}
        try:
            import lightgbm
        except ImportError as exc:
            raise ModelLoadError(
                f"{file}: lightgbm is not importable ({exc}); install it with: pip install 'pier[lightgbm]'"
            ) from None

        try:
            booster = lightgbm.Booster(model_file=str(file))
            num_features = int(booster.num_feature())
            objective = _objective_in_header(file) or str(booster.params.get("objective", ""))
            # One row of zeros gives the exact output shape and proves the booster predicts.
            probe = booster.predict(np.zeros((1, num_features)), **self._predict_args)
        except Exception as exc:
            raise ModelLoadError(f"{file}: lightgbm cannot load it: {exc}") from None

        self._objective = objective
        self._num_class = int(booster.num_model_per_iteration())
        labels = self.config.class_labels
        expected = self._label_count()
        if labels is not None and expected and len(labels) != expected:
            raise ModelLoadError(
                f"{file}: config.class_labels has {len(labels)} labels, "
                f"objective {objective} has {expected} classes"
            )

        self.inputs = [TensorSpec("input", "FP64", (-1, num_features))]
        self.outputs = [TensorSpec("predict", "FP64", (-1, *np.shape(probe)[1:]))]
        self.apply_declared_metadata()
        self.batched = all(t.shape[:1] == (-1,) for t in self.inputs)
        if self.outputs:
            self._out_name = self.outputs[0].name
            self._out_dtype = to_numpy_dtype(self.outputs[0].datatype)
        self._booster = booster

    def _label_count(self) -> int:
        if self._objective == "binary":
            return 2
        if self._objective in _CLASSIFIERS:
            return self._num_class
        return 0

    @property
    def feature_names(self) -> list[str] | None:
        if self.config.feature_names is not None:
            return self.config.feature_names
        if self._booster is None:
            return None
        return [str(n) for n in self._booster.feature_name()]

    def _run(self, x: Array) -> Array:
        booster = self._booster
        if booster is None:
            raise InternalError(f"model at {self.path} is not loaded")
        if x.ndim != 2 or x.dtype.kind not in "biuf":
            raise InvalidInput(
                f"expected a 2-D numeric feature matrix, got {x.dtype} of shape {x.shape}"
            )
        try:
            return np.asarray(booster.predict(x, **self._predict_args))
        except Exception as exc:
            raise InvalidInput(f"lightgbm rejected the input: {exc}") from None

    def predict(self, inputs: Mapping[str, Array]) -> dict[str, Array]:
        name = self.inputs[0].name if self.inputs else "input"
        if name in inputs:
            x = inputs[name]
        elif len(inputs) == 1:
            x = next(iter(inputs.values()))
        else:
            raise InvalidInput(
                f"expected one input named '{name}', got {', '.join(inputs) or 'none'}"
            )
        result = self._run(x)
        if result.dtype != self._out_dtype:
            result = result.astype(self._out_dtype)
        return {self._out_name: result}

    def classify(self, x: Array) -> tuple[list[str], Array]:
        count = self._label_count()
        if not count:
            raise Unsupported(
                f"objective {self._objective or 'unknown'} gives no class probabilities; "
                f"classify needs one of {', '.join(_CLASSIFIERS)}"
            )
        scores = self._run(x)
        if self._objective == "binary":
            scores = np.stack([1.0 - scores, scores], axis=1)
        labels = self.config.class_labels or [str(i) for i in range(count)]
        return labels, scores

    def regress(self, x: Array) -> Array:
        if self._objective not in _REGRESSIONS:
            raise Unsupported(f"objective {self._objective or 'unknown'} is not a regression")
        values = self._run(x)
        if values.ndim != 1:
            raise Unsupported(
                f"model at {self.path} predicts {values.shape[1:]} values per row, not one"
            )
        return values

    def unload(self) -> None:
        self._booster = None
