"""scikit-learn runtime: serves a pickled estimator or pipeline (``.joblib``, ``.pkl``, ``.pickle``).

Files are read with ``joblib.load``, which also reads plain pickles. Unpickling runs code
from the file: serve only files you trust.

Parameters (``parameters:`` in config.yaml):

- ``method``: the estimator method to call, ``predict`` (the default) or ``predict_proba``,
  or a list of methods. Each becomes one output named after the method.

The single input is named ``input``, a feature matrix of shape [-1, n_features].
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pier.errors import InternalError, InvalidInput, ModelLoadError, Unsupported
from pier.serving.model import Array, Model
from pier.serving.modelconfig import ModelConfig
from pier.serving.runtimes._common import (
    batch_dim_first,
    find_model_file,
    import_library,
    one_value_per_row,
    single_input,
)
from pier.serving.tensors import TensorSpec, from_numpy_dtype, to_numpy_dtype

_SUFFIXES = (".joblib", ".pkl", ".pickle")
_PROBABILITY_METHODS = ("predict_proba", "predict_log_proba")


def _methods(params: Mapping[str, Any], where: Path) -> list[str]:
    value = params.get("method", "predict")
    methods = [value] if isinstance(value, str) else value
    if (
        not isinstance(methods, list)
        or not methods
        or not all(isinstance(m, str) and m for m in methods)
        or len(set(methods)) != len(methods)
    ):
        raise ModelLoadError(
            f"{where}: parameters.method must be a method name or a list of distinct names, got {value!r}"
        )
    return methods


def _sklearn_kind(estimator: Any) -> str:
    """'classifier', 'regressor', 'clusterer' or '' for objects scikit-learn cannot tag."""
    try:
        from sklearn.base import is_classifier, is_clusterer, is_regressor

        if is_classifier(estimator):
            return "classifier"
        if is_regressor(estimator):
            return "regressor"
        if is_clusterer(estimator):
            return "clusterer"
    except Exception:  # objects that are not BaseEstimators have no tags
        return ""
    return ""


def _unfitted_reason(estimator: Any) -> str | None:
    """Why scikit-learn thinks the estimator is not fitted, or None."""
    try:
        from sklearn.base import BaseEstimator
        from sklearn.exceptions import NotFittedError
        from sklearn.utils.validation import check_is_fitted
    except ImportError:  # joblib without scikit-learn: nothing to check with
        return None
    if not isinstance(estimator, BaseEstimator):
        return None
    try:
        check_is_fitted(estimator)
    except NotFittedError as exc:
        return str(exc)
    except Exception:  # estimators with unusual fitted-state conventions
        return None
    return None


def _label_datatype(classes: Array) -> str:
    try:
        return from_numpy_dtype(classes.dtype)
    except InvalidInput:  # dates, categoricals and the like: report them as strings
        return "BYTES"


def _output_spec(method: str, kind: str, classes: Array | None) -> TensorSpec:
    # A best guess from what the fitted estimator tells; predict() casts to it, and
    # config.yaml declarations override it.
    n_classes = len(classes) if classes is not None else -1
    if method == "predict":
        if classes is not None:
            return TensorSpec(method, _label_datatype(classes), (-1,))
        return TensorSpec(method, "INT64" if kind == "clusterer" else "FP64", (-1,))
    if method in _PROBABILITY_METHODS:
        return TensorSpec(method, "FP64", (-1, n_classes))
    if method == "decision_function":
        return TensorSpec(method, "FP64", (-1,) if n_classes == 2 else (-1, n_classes))
    if method == "score_samples":
        return TensorSpec(method, "FP64", (-1,))
    return TensorSpec(method, "FP64", (-1, -1))


def _as_bytes(values: Any) -> Array:
    arr = np.asarray(values)
    out = np.empty(arr.shape, dtype=object)
    flat_out = out.reshape(-1)
    for i, v in enumerate(arr.reshape(-1)):
        flat_out[i] = bytes(v) if isinstance(v, bytes) else str(v).encode("utf-8")
    return out


def _decode_text(arr: Array) -> Array:
    # Text pipelines (vectorizers) want str; BYTES inputs arrive as bytes objects.
    out = np.empty(arr.shape, dtype=object)
    flat_out = out.reshape(-1)
    for i, v in enumerate(arr.reshape(-1)):
        try:
            flat_out[i] = bytes(v).decode("utf-8") if isinstance(v, bytes | bytearray) else v
        except UnicodeDecodeError:
            raise InvalidInput(f"input element {i} is not valid UTF-8") from None
    return out


class SklearnModel(Model):
    """A fitted scikit-learn estimator (or anything with the same methods) loaded by joblib."""

    runtime = "sklearn"
    platform = "sklearn"
    # Fitted estimators are read-only at prediction time.
    thread_safe = True

    def __init__(self, path: Path, config: ModelConfig) -> None:
        super().__init__(path, config)
        self._estimator: Any = None
        self._methods: list[str] = []
        self._kind = ""
        self._classes: Array | None = None
        self._out_dtypes: dict[str, np.dtype[Any]] = {}

    def load(self) -> None:
        file = find_model_file(self.path, _SUFFIXES, ("model.joblib",))
        methods = _methods(self.config.parameters, self.path)
        joblib = import_library("joblib", "sklearn", file)
        try:
            estimator = joblib.load(file)
        except Exception as exc:
            raise ModelLoadError(
                f"{file}: cannot be unpickled: {type(exc).__name__}: {exc}"
            ) from None

        name = type(estimator).__name__
        unfitted = _unfitted_reason(estimator)
        if unfitted is not None:
            raise ModelLoadError(f"{file}: {name} is not fitted: {unfitted}")
        missing = [m for m in methods if not callable(getattr(estimator, m, None))]
        if missing:
            raise ModelLoadError(f"{file}: {name} has no method {', '.join(missing)}")

        classes = getattr(estimator, "classes_", None)
        if isinstance(classes, list):
            # Multi-output classifiers keep one class array per output.
            if any(m in _PROBABILITY_METHODS for m in methods):
                raise ModelLoadError(
                    f"{file}: {name} is a multi-output classifier; its probabilities cannot be served"
                )
            classes = None
        elif classes is not None:
            classes = np.asarray(classes)
        labels = self.config.class_labels
        if labels is not None and classes is not None and len(labels) != len(classes):
            raise ModelLoadError(
                f"{file}: config.class_labels has {len(labels)} labels, the model has {len(classes)} classes"
            )

        self._kind = _sklearn_kind(estimator)
        n_features = getattr(estimator, "n_features_in_", None)
        width = int(n_features) if isinstance(n_features, int | np.integer) else -1
        self.inputs = [TensorSpec("input", "FP64", (-1, width))]
        self.outputs = [_output_spec(m, self._kind, classes) for m in methods]
        self.apply_declared_metadata()
        self.batched = batch_dim_first(self.inputs)

        by_name = {t.name: t.datatype for t in self.outputs}
        self._out_dtypes = {m: to_numpy_dtype(by_name[m]) for m in methods if m in by_name}
        self._estimator = estimator
        self._methods = methods
        self._classes = classes

    @property
    def feature_names(self) -> list[str] | None:
        if self.config.feature_names is not None:
            return self.config.feature_names
        names = getattr(self._estimator, "feature_names_in_", None)
        return None if names is None else [str(n) for n in names]

    def _call(self, method: str, x: Array) -> Array:
        estimator = self._estimator
        if estimator is None:
            raise InternalError(f"model at {self.path} is not loaded")
        try:
            return np.asarray(getattr(estimator, method)(x))
        except (ValueError, TypeError) as exc:
            # scikit-learn raises these for inputs of the wrong width, dtype or content.
            raise InvalidInput(
                f"{type(estimator).__name__}.{method} rejected the input: {exc}"
            ) from None
        except Exception as exc:
            raise InternalError(
                f"{type(estimator).__name__}.{method} failed: {type(exc).__name__}: {exc}"
            ) from None

    def predict(self, inputs: Mapping[str, Array]) -> dict[str, Array]:
        x = single_input(inputs, self.inputs)
        if x.dtype.kind in "OS":
            x = _decode_text(x)
        out: dict[str, Array] = {}
        for method in self._methods:
            result = self._call(method, x)
            want = self._out_dtypes.get(method)
            if want is None or result.dtype == want:
                out[method] = result
            elif want.kind == "O":
                out[method] = _as_bytes(result)
            else:
                out[method] = result.astype(want)
        return out

    def classify(self, x: Array) -> tuple[list[str], Array]:
        if self._classes is None or not callable(getattr(self._estimator, "predict_proba", None)):
            raise Unsupported(
                f"model at {self.path} has no predict_proba and classes_; it cannot classify"
            )
        labels = self.config.class_labels or [str(c) for c in self._classes]
        return labels, self._call("predict_proba", x).astype(np.float64, copy=False)

    def regress(self, x: Array) -> Array:
        if self._kind != "regressor":
            raise Unsupported(
                f"model at {self.path} is not a scikit-learn regressor; it cannot regress"
            )
        values = self._call("predict", x).astype(np.float64, copy=False)
        if values.ndim == 2 and values.shape[1] == 1:
            values = values[:, 0]
        return one_value_per_row(values, self.path)

    def unload(self) -> None:
        self._estimator = None
        self._classes = None
