"""XGBoost runtime: serves a saved Booster (``model.json``, ``.ubj``, ``.bst``, ``.xgb``).

Prediction uses ``Booster.inplace_predict`` on the request's numpy array, which skips
building a DMatrix. The input ``input`` is a feature matrix [-1, num_features] (FP32;
other numeric dtypes are accepted as they are); the output ``predict`` is FP32, shaped as
the booster predicts: [-1] for most objectives, [-1, num_class] for ``multi:softprob``.

Parameters (``parameters:`` in config.yaml):

- ``nthread``: threads per prediction (0, the default, lets XGBoost choose)
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pier.errors import InternalError, InvalidInput, ModelLoadError, Unsupported
from pier.serving.model import Array, Model
from pier.serving.modelconfig import ModelConfig
from pier.serving.tensors import TensorSpec, to_numpy_dtype

_SUFFIXES = (".ubj", ".bst", ".xgb")
_PREFERRED = ("model.json", "model.ubj", "model.bst", "model.xgb")
# "[12:00:00] /path/to/file.cc:123: " in front of XGBoost's messages
_LOCATION = re.compile(r"^\[[\d:]+\] \S+:\d+: ")


def _find_model_file(folder: Path) -> Path:
    found = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and (p.suffix in _SUFFIXES or p.name == "model.json")
    )
    if len(found) == 1:
        return found[0]
    if not found:
        raise ModelLoadError(f"{folder}: no model.json, .ubj, .bst or .xgb file found")
    for name in _PREFERRED:
        if folder / name in found:
            return folder / name
    names = ", ".join(p.name for p in found)
    raise ModelLoadError(f"{folder}: several model files ({names}); keep one or name it model.json")


def _message(exc: BaseException) -> str:
    # XGBoost appends a native stack trace; the first line carries the reason.
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    return _LOCATION.sub("", first)


class XGBoostModel(Model):
    """An XGBoost Booster predicting in place on numpy arrays."""

    runtime = "xgboost"
    platform = "xgboost"
    # Since XGBoost 1.4 prediction with tree boosters is safe from several threads, and the
    # native call releases the GIL.
    thread_safe = True

    def __init__(self, path: Path, config: ModelConfig) -> None:
        super().__init__(path, config)
        self._booster: Any = None
        self._objective = ""
        self._num_class = 0
        self._out_name = "predict"
        self._out_dtype: np.dtype[Any] = np.dtype(np.float32)

    def load(self) -> None:
        file = _find_model_file(self.path)
        nthread = self.config.parameters.get("nthread", 0)
        if isinstance(nthread, bool) or not isinstance(nthread, int) or nthread < 0:
            raise ModelLoadError(
                f"{self.path}: parameters.nthread must be a non-negative integer, got {nthread!r}"
            )
        try:
            import xgboost
        except ImportError as exc:
            raise ModelLoadError(
                f"{file}: xgboost is not importable ({exc}); install it with: pip install 'pier[xgboost]'"
            ) from None

        try:
            booster = xgboost.Booster()
            if file.suffix in (".json", ".ubj"):
                booster.load_model(str(file))
            else:
                # XGBoost warns about file names it does not recognise (.bst, .xgb); from
                # a buffer it tells JSON from UBJSON by the content instead.
                booster.load_model(bytearray(file.read_bytes()))
            if nthread:
                booster.set_param("nthread", str(nthread))
            learner = json.loads(booster.save_config())["learner"]
            num_features = int(booster.num_features())
            # One row of zeros tells the output shape for any objective, and proves the
            # booster can predict before it is marked ready.
            probe = booster.inplace_predict(np.zeros((1, num_features), dtype=np.float32))
        except Exception as exc:
            raise ModelLoadError(f"{file}: xgboost cannot load it: {_message(exc)}") from None

        self._objective = str(learner["objective"]["name"])
        self._num_class = int(learner["learner_model_param"].get("num_class", 0))
        labels = self.config.class_labels
        expected = self._label_count()
        if labels is not None and expected and len(labels) != expected:
            raise ModelLoadError(
                f"{file}: config.class_labels has {len(labels)} labels, "
                f"objective {self._objective} has {expected} classes"
            )

        self.inputs = [TensorSpec("input", "FP32", (-1, num_features))]
        self.outputs = [TensorSpec("predict", "FP32", (-1, *np.shape(probe)[1:]))]
        self.apply_declared_metadata()
        self.batched = all(t.shape[:1] == (-1,) for t in self.inputs)
        if self.outputs:
            self._out_name = self.outputs[0].name
            self._out_dtype = to_numpy_dtype(self.outputs[0].datatype)
        self._booster = booster

    def _label_count(self) -> int:
        if self._objective == "binary:logistic":
            return 2
        if self._objective == "multi:softprob":
            return self._num_class
        return 0

    @property
    def feature_names(self) -> list[str] | None:
        if self.config.feature_names is not None:
            return self.config.feature_names
        names = getattr(self._booster, "feature_names", None)
        return None if names is None else list(names)

    def _run(self, x: Array) -> Array:
        booster = self._booster
        if booster is None:
            raise InternalError(f"model at {self.path} is not loaded")
        if x.ndim != 2 or x.dtype.kind not in "biuf":
            raise InvalidInput(
                f"expected a 2-D numeric feature matrix, got {x.dtype} of shape {x.shape}"
            )
        try:
            return np.asarray(booster.inplace_predict(x, validate_features=False))
        except Exception as exc:
            raise InvalidInput(f"xgboost rejected the input: {_message(exc)}") from None

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
                "classify needs binary:logistic or multi:softprob"
            )
        scores = self._run(x)
        if self._objective == "binary:logistic":
            scores = np.stack([1.0 - scores, scores], axis=1)
        labels = self.config.class_labels or [str(i) for i in range(count)]
        return labels, scores

    def regress(self, x: Array) -> Array:
        if not self._objective.startswith("reg:"):
            raise Unsupported(
                f"objective {self._objective or 'unknown'} is not a regression (reg:*)"
            )
        values = self._run(x)
        if values.ndim != 1:
            raise Unsupported(
                f"model at {self.path} predicts {values.shape[1:]} values per row, not one"
            )
        return values

    def unload(self) -> None:
        self._booster = None
