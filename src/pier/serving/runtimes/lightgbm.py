"""LightGBM runtime: serves a Booster saved as text (``model.txt`` or ``*.lgb``).

The input ``input`` is a feature matrix [-1, num_feature] (FP64; other numeric dtypes are
accepted as they are); the output ``predict`` is FP64, [-1] for most objectives and
[-1, num_class] for multiclass ones.

Parameters (``parameters:`` in config.yaml):

- ``num_threads``: OpenMP threads per prediction (0, the default, lets LightGBM choose)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from pier.errors import ModelLoadError, Unsupported
from pier.serving.model import Array
from pier.serving.modelconfig import ModelConfig
from pier.serving.runtimes._boosting import BoosterModel
from pier.serving.runtimes._common import (
    find_model_file,
    import_library,
    one_value_per_row,
    thread_count,
)

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


class LightGBMModel(BoosterModel):
    """A LightGBM Booster predicting on numpy arrays."""

    runtime = "lightgbm"
    platform = "lightgbm"
    # Concurrent predictions on one Booster write shared predictor state in the native
    # library (LightGBM issue #6142); one call already uses every OpenMP thread.
    thread_safe = False
    datatype = "FP64"
    binary_objective = "binary"
    multiclass_objectives = ("multiclass", "multiclassova")

    def __init__(self, path: Path, config: ModelConfig) -> None:
        super().__init__(path, config)
        self._predict_args: dict[str, Any] = {}

    def load(self) -> None:
        file = find_model_file(self.path, (".lgb",), ("model.txt",), names=("model.txt",))
        threads = thread_count(self.config.parameters, "num_threads", self.path)
        self._predict_args = {"num_threads": threads} if threads else {}
        lightgbm = import_library("lightgbm", "lightgbm", file)

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
        self._adopt(booster, file, num_features, probe)

    def _predict_rows(self, booster: Any, x: Array) -> Any:
        return booster.predict(x, **self._predict_args)

    @property
    def feature_names(self) -> list[str] | None:
        if self.config.feature_names is not None:
            return self.config.feature_names
        if self._booster is None:
            return None
        return [str(n) for n in self._booster.feature_name()]

    def regress(self, x: Array) -> Array:
        if self._objective not in _REGRESSIONS:
            raise Unsupported(f"objective {self._objective or 'unknown'} is not a regression")
        return one_value_per_row(self._run(x), self.path)
