"""What the XGBoost and LightGBM runtimes share: a Booster scoring a 2-D feature matrix."""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from pier.errors import InternalError, InvalidInput, ModelLoadError, Unsupported
from pier.serving.model import Array, Model
from pier.serving.modelconfig import ModelConfig
from pier.serving.runtimes._common import batch_dim_first, or_list, single_input
from pier.serving.tensors import TensorSpec, to_numpy_dtype


class BoosterModel(Model):
    """A gradient-boosted trees Booster; subclasses load it and call its predict."""

    #: datatype of the feature matrix and of the predictions
    datatype: ClassVar[str]
    #: the objective that predicts one score per row, the probability of class 1
    binary_objective: ClassVar[str]
    #: the objectives that predict one probability per class
    multiclass_objectives: ClassVar[tuple[str, ...]]

    def __init__(self, path: Path, config: ModelConfig) -> None:
        super().__init__(path, config)
        self._booster: Any = None
        self._objective = ""
        self._num_class = 0
        self._out_name = "predict"
        self._out_dtype: np.dtype[Any] = to_numpy_dtype(self.datatype)

    @abstractmethod
    def _predict_rows(self, booster: Any, x: Array) -> Any:
        """The booster's predictions for a 2-D numeric matrix."""

    @staticmethod
    def _reason(exc: BaseException) -> str:
        """The library's error message as the user should read it."""
        return str(exc)

    def _adopt(self, booster: Any, file: Path, num_features: int, probe: Array) -> None:
        """End load(): check class_labels, describe the tensors and keep the booster.

        ``self._objective`` and ``self._num_class`` are set before; ``probe`` is the
        prediction for one row, which tells the output's shape.
        """
        labels = self.config.class_labels
        expected = self._label_count()
        if labels is not None and expected and len(labels) != expected:
            raise ModelLoadError(
                f"{file}: config.class_labels has {len(labels)} labels, "
                f"objective {self._objective} has {expected} classes"
            )

        self.inputs = [TensorSpec("input", self.datatype, (-1, num_features))]
        self.outputs = [TensorSpec("predict", self.datatype, (-1, *np.shape(probe)[1:]))]
        self.apply_declared_metadata()
        self.batched = batch_dim_first(self.inputs)
        if self.outputs:
            self._out_name = self.outputs[0].name
            self._out_dtype = to_numpy_dtype(self.outputs[0].datatype)
        self._booster = booster

    def _label_count(self) -> int:
        if self._objective == self.binary_objective:
            return 2
        if self._objective in self.multiclass_objectives:
            return self._num_class
        return 0

    def _run(self, x: Array) -> Array:
        booster = self._booster
        if booster is None:
            raise InternalError(f"model at {self.path} is not loaded")
        if x.ndim != 2 or x.dtype.kind not in "biuf":
            raise InvalidInput(
                f"expected a 2-D numeric feature matrix, got {x.dtype} of shape {x.shape}"
            )
        try:
            return np.asarray(self._predict_rows(booster, x))
        except Exception as exc:
            raise InvalidInput(f"{self.runtime} rejected the input: {self._reason(exc)}") from None

    def predict(self, inputs: Mapping[str, Array]) -> dict[str, Array]:
        result = self._run(single_input(inputs, self.inputs))
        if result.dtype != self._out_dtype:
            result = result.astype(self._out_dtype)
        return {self._out_name: result}

    def classify(self, x: Array) -> tuple[list[str], Array]:
        count = self._label_count()
        if not count:
            raise Unsupported(
                f"objective {self._objective or 'unknown'} gives no class probabilities; "
                f"classify needs {or_list((self.binary_objective, *self.multiclass_objectives))}"
            )
        scores = self._run(x)
        if self._objective == self.binary_objective:
            scores = np.stack([1.0 - scores, scores], axis=1)
        labels = self.config.class_labels or [str(i) for i in range(count)]
        return labels, scores

    def unload(self) -> None:
        self._booster = None
