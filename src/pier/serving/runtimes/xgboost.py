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
from typing import Any

import numpy as np

from pier.errors import ModelLoadError, Unsupported
from pier.serving.model import Array
from pier.serving.runtimes._boosting import BoosterModel
from pier.serving.runtimes._common import (
    find_model_file,
    import_library,
    one_value_per_row,
    thread_count,
)

_SUFFIXES = (".ubj", ".bst", ".xgb")
_PREFERRED = ("model.json", "model.ubj", "model.bst", "model.xgb")
# "[12:00:00] /path/to/file.cc:123: " in front of XGBoost's messages
_LOCATION = re.compile(r"^\[[\d:]+\] \S+:\d+: ")


class XGBoostModel(BoosterModel):
    """An XGBoost Booster predicting in place on numpy arrays."""

    runtime = "xgboost"
    platform = "xgboost"
    # Since XGBoost 1.4 prediction with tree boosters is safe from several threads, and the
    # native call releases the GIL.
    thread_safe = True
    datatype = "FP32"
    binary_objective = "binary:logistic"
    multiclass_objectives = ("multi:softprob",)

    def load(self) -> None:
        file = find_model_file(self.path, _SUFFIXES, _PREFERRED, names=("model.json",))
        nthread = thread_count(self.config.parameters, "nthread", self.path)
        xgboost = import_library("xgboost", "xgboost", file)

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
            raise ModelLoadError(f"{file}: xgboost cannot load it: {self._reason(exc)}") from None

        self._objective = str(learner["objective"]["name"])
        self._num_class = int(learner["learner_model_param"].get("num_class", 0))
        self._adopt(booster, file, num_features, probe)

    @staticmethod
    def _reason(exc: BaseException) -> str:
        # XGBoost appends a native stack trace; the first line carries the reason.
        text = str(exc).strip()
        first = text.splitlines()[0] if text else type(exc).__name__
        return _LOCATION.sub("", first)

    def _predict_rows(self, booster: Any, x: Array) -> Any:
        return booster.inplace_predict(x, validate_features=False)

    @property
    def feature_names(self) -> list[str] | None:
        if self.config.feature_names is not None:
            return self.config.feature_names
        names = getattr(self._booster, "feature_names", None)
        return None if names is None else list(names)

    def regress(self, x: Array) -> Array:
        if not self._objective.startswith("reg:"):
            raise Unsupported(
                f"objective {self._objective or 'unknown'} is not a regression (reg:*)"
            )
        return one_value_per_row(self._run(x), self.path)
