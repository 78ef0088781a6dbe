"""The scikit-learn runtime on small estimators fitted to iris."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from pier.errors import InvalidInput, ModelLoadError, Unsupported
from pier.serving.model import Model
from pier.serving.modelconfig import ModelConfig
from pier.serving.runtimes import infer_runtime, model_class
from pier.serving.tensors import TensorSpec

SPECIES = np.array(["setosa", "versicolor", "virginica"])


@pytest.fixture(scope="module")
def iris() -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    x, y = load_iris(return_X_y=True)
    return x, y


@pytest.fixture(scope="module")
def classifier(iris: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]) -> LogisticRegression:
    x, y = iris
    return LogisticRegression(max_iter=500).fit(x, SPECIES[y])


@pytest.fixture(scope="module")
def regressor(iris: tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]) -> Any:
    x, _ = iris
    return make_pipeline(StandardScaler(), LinearRegression()).fit(x[:, :3], x[:, 3])


def _save(folder: Path, estimator: Any, name: str = "model.joblib") -> Path:
    joblib.dump(estimator, folder / name)
    return folder


def _load(path: Path, **config: Any) -> Model:
    model = model_class("sklearn")(path, ModelConfig.model_validate(config))
    model.load()
    return model


def test_classifier_metadata(tmp_path: Path, classifier: LogisticRegression) -> None:
    model = _load(_save(tmp_path, classifier), parameters={"method": ["predict", "predict_proba"]})
    assert model.platform == "sklearn"
    assert model.inputs == [TensorSpec("input", "FP64", (-1, 4))]
    assert model.outputs == [
        TensorSpec("predict", "BYTES", (-1,)),
        TensorSpec("predict_proba", "FP64", (-1, 3)),
    ]
    assert model.batched
    assert model.thread_safe


def test_classifier_predict_matches_sklearn(
    tmp_path: Path, classifier: LogisticRegression, iris: tuple[Any, Any]
) -> None:
    x = iris[0][::30]
    model = _load(_save(tmp_path, classifier), parameters={"method": ["predict", "predict_proba"]})
    out = model.predict({"input": x})
    assert out["predict"].dtype == object
    assert list(out["predict"]) == [s.encode() for s in classifier.predict(x)]
    np.testing.assert_allclose(out["predict_proba"], classifier.predict_proba(x))
    # other numeric dtypes are accepted as they come
    out32 = model.predict({"input": x.astype(np.float32)})
    assert list(out32["predict"]) == list(out["predict"])


def test_default_method_is_predict(tmp_path: Path, classifier: LogisticRegression) -> None:
    model = _load(_save(tmp_path, classifier))
    assert [t.name for t in model.outputs] == ["predict"]


def test_integer_classes_keep_their_dtype(tmp_path: Path, iris: tuple[Any, Any]) -> None:
    x, y = iris
    estimator = LogisticRegression(max_iter=500).fit(x, y)
    model = _load(_save(tmp_path, estimator))
    assert model.outputs == [TensorSpec("predict", "INT64", (-1,))]
    out = model.predict({"input": x[:5]})
    assert out["predict"].dtype == np.int64
    np.testing.assert_array_equal(out["predict"], estimator.predict(x[:5]))


def test_clusterer_predict_is_int64(tmp_path: Path, iris: tuple[Any, Any]) -> None:
    estimator = KMeans(n_clusters=3, n_init=1, random_state=0).fit(iris[0])
    model = _load(_save(tmp_path, estimator))
    out = model.predict({"input": iris[0][:4]})
    assert model.outputs == [TensorSpec("predict", "INT64", (-1,))]
    assert out["predict"].dtype == np.int64
    np.testing.assert_array_equal(out["predict"], estimator.predict(iris[0][:4]))


def test_classify(tmp_path: Path, classifier: LogisticRegression, iris: tuple[Any, Any]) -> None:
    x = iris[0][:3]
    model = _load(_save(tmp_path, classifier))
    labels, scores = model.classify(x)
    assert labels == ["setosa", "versicolor", "virginica"]
    assert scores.dtype == np.float64
    np.testing.assert_allclose(scores, classifier.predict_proba(x))
    with pytest.raises(Unsupported):
        model.regress(x)


def test_class_labels_override(tmp_path: Path, classifier: LogisticRegression) -> None:
    model = _load(_save(tmp_path, classifier), class_labels=["a", "b", "c"])
    labels, _ = model.classify(np.zeros((1, 4)))
    assert labels == ["a", "b", "c"]
    with pytest.raises(ModelLoadError, match="2 labels"):
        _load(tmp_path, class_labels=["a", "b"])


def test_regressor(tmp_path: Path, regressor: Any, iris: tuple[Any, Any]) -> None:
    x = iris[0][:5, :3]
    model = _load(_save(tmp_path, regressor, "model.pkl"))
    assert model.inputs == [TensorSpec("input", "FP64", (-1, 3))]
    assert model.outputs == [TensorSpec("predict", "FP64", (-1,))]
    np.testing.assert_allclose(model.predict({"input": x})["predict"], regressor.predict(x))
    np.testing.assert_allclose(model.regress(x), regressor.predict(x))
    with pytest.raises(Unsupported):
        model.classify(x)


def test_wrong_width_is_invalid_input(tmp_path: Path, regressor: Any) -> None:
    model = _load(_save(tmp_path, regressor))
    with pytest.raises(InvalidInput, match="rejected the input"):
        model.predict({"input": np.zeros((2, 5))})


def test_feature_names(tmp_path: Path, iris: tuple[Any, Any]) -> None:
    x, y = iris
    estimator = LogisticRegression(max_iter=500).fit(x, y)
    # as if fitted on a DataFrame
    estimator.feature_names_in_ = np.array(["sl", "sw", "pl", "pw"], dtype=object)
    _save(tmp_path, estimator)
    assert _load(tmp_path).feature_names == ["sl", "sw", "pl", "pw"]
    assert _load(tmp_path, feature_names=["a", "b", "c", "d"]).feature_names == ["a", "b", "c", "d"]


def test_declared_input_datatype_wins(tmp_path: Path, regressor: Any) -> None:
    model = _load(
        _save(tmp_path, regressor),
        inputs=[{"name": "features", "datatype": "FP32", "shape": [-1, 3]}],
    )
    assert model.inputs == [TensorSpec("features", "FP32", (-1, 3))]
    assert model.predict({"features": np.zeros((1, 3), np.float32)})["predict"].shape == (1,)


def test_method_checks(tmp_path: Path, regressor: Any) -> None:
    _save(tmp_path, regressor)
    with pytest.raises(ModelLoadError, match="has no method predict_proba"):
        _load(tmp_path, parameters={"method": "predict_proba"})
    with pytest.raises(ModelLoadError, match=r"parameters\.method"):
        _load(tmp_path, parameters={"method": []})


def test_unfitted_estimator_is_refused(tmp_path: Path) -> None:
    _save(tmp_path, LogisticRegression())
    with pytest.raises(ModelLoadError, match="LogisticRegression is not fitted"):
        _load(tmp_path)


def test_corrupt_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "model.pkl").write_bytes(np.random.default_rng(0).bytes(64))
    with pytest.raises(ModelLoadError, match=r"model\.pkl: cannot be unpickled"):
        _load(tmp_path)


def test_missing_module_in_pickle(tmp_path: Path) -> None:
    # A pickle that refers to a module this environment does not have.
    payload = pickle.dumps(0).replace(b"K\x00", b"cno_such_module_xyz\nThing\n)\x81")
    (tmp_path / "model.pickle").write_bytes(payload)
    with pytest.raises(ModelLoadError, match="no_such_module_xyz"):
        _load(tmp_path)


def test_file_choice(tmp_path: Path, regressor: Any) -> None:
    _save(tmp_path, regressor, "a.pkl")
    _save(tmp_path, regressor, "b.joblib")
    with pytest.raises(ModelLoadError, match=r"a\.pkl, b\.joblib"):
        _load(tmp_path)
    _save(tmp_path, regressor)
    assert _load(tmp_path).outputs[0].name == "predict"


@pytest.mark.parametrize("name", ["model.joblib", "model.pkl", "model.pickle"])
def test_infer_runtime(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"")
    assert infer_runtime(tmp_path) == "sklearn"
