"""The XGBoost runtime on boosters trained on a few hundred random rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xgboost as xgb

from pier.errors import InvalidInput, ModelLoadError, Unsupported
from pier.serving.model import Model
from pier.serving.modelconfig import ModelConfig
from pier.serving.runtimes import infer_runtime, model_class
from pier.serving.tensors import TensorSpec

RNG = np.random.default_rng(7)
X = RNG.normal(size=(300, 4)).astype(np.float32)
ROWS = X[:8]


def _train(objective: str, label: np.ndarray[Any, Any], **params: Any) -> xgb.Booster:
    data = xgb.DMatrix(X, label=label, feature_names=["a", "b", "c", "d"])
    return xgb.train({"objective": objective, "nthread": 1, **params}, data, num_boost_round=4)


@pytest.fixture(scope="module")
def binary() -> xgb.Booster:
    return _train("binary:logistic", (X[:, 0] > 0).astype(int))


@pytest.fixture(scope="module")
def multi() -> xgb.Booster:
    return _train("multi:softprob", np.digitize(X[:, 1], [-0.5, 0.5]), num_class=3)


@pytest.fixture(scope="module")
def regression() -> xgb.Booster:
    return _train("reg:squarederror", X[:, 0] * 2 + X[:, 2])


def _save(folder: Path, booster: xgb.Booster, name: str = "model.json") -> Path:
    if name.endswith((".json", ".ubj")):
        booster.save_model(str(folder / name))
    else:
        # save_model warns on suffixes it does not know; write UBJSON bytes ourselves
        (folder / name).write_bytes(bytes(booster.save_raw("ubj")))
    return folder


def _load(path: Path, **config: Any) -> Model:
    model = model_class("xgboost")(path, ModelConfig.model_validate(config))
    model.load()
    return model


def _reference(booster: xgb.Booster, rows: np.ndarray[Any, Any]) -> Any:
    return booster.predict(xgb.DMatrix(rows, feature_names=booster.feature_names))


def test_binary(tmp_path: Path, binary: xgb.Booster) -> None:
    model = _load(_save(tmp_path, binary))
    assert model.platform == "xgboost"
    assert model.inputs == [TensorSpec("input", "FP32", (-1, 4))]
    assert model.outputs == [TensorSpec("predict", "FP32", (-1,))]
    assert model.batched
    assert model.feature_names == ["a", "b", "c", "d"]

    out = model.predict({"input": ROWS})
    assert out["predict"].dtype == np.float32
    p = _reference(binary, ROWS)
    np.testing.assert_allclose(out["predict"], p, rtol=1e-6)

    labels, scores = model.classify(ROWS)
    assert labels == ["0", "1"]
    np.testing.assert_allclose(scores, np.stack([1 - p, p], axis=1), rtol=1e-6)
    with pytest.raises(Unsupported, match="reg:"):
        model.regress(ROWS)


def test_fp64_input_is_accepted(tmp_path: Path, binary: xgb.Booster) -> None:
    model = _load(_save(tmp_path, binary))
    out = model.predict({"input": ROWS.astype(np.float64)})
    np.testing.assert_allclose(out["predict"], _reference(binary, ROWS), rtol=1e-6)


def test_multiclass(tmp_path: Path, multi: xgb.Booster) -> None:
    model = _load(_save(tmp_path, multi, "model.ubj"))
    assert model.outputs == [TensorSpec("predict", "FP32", (-1, 3))]
    out = model.predict({"input": ROWS})
    np.testing.assert_allclose(out["predict"], _reference(multi, ROWS), rtol=1e-6)
    labels, scores = model.classify(ROWS)
    assert labels == ["0", "1", "2"]
    assert scores.shape == (8, 3)


def test_class_labels(tmp_path: Path, multi: xgb.Booster) -> None:
    _save(tmp_path, multi)
    model = _load(tmp_path, class_labels=["low", "mid", "high"])
    assert model.classify(ROWS)[0] == ["low", "mid", "high"]
    with pytest.raises(ModelLoadError, match="2 labels"):
        _load(tmp_path, class_labels=["low", "high"])


def test_regression(tmp_path: Path, regression: xgb.Booster) -> None:
    model = _load(_save(tmp_path, regression, "model.bst"))
    expected = _reference(regression, ROWS)
    np.testing.assert_allclose(model.predict({"input": ROWS})["predict"], expected, rtol=1e-6)
    np.testing.assert_allclose(model.regress(ROWS), expected, rtol=1e-6)
    with pytest.raises(Unsupported, match="classify needs"):
        model.classify(ROWS)


def test_nthread_parameter(tmp_path: Path, binary: xgb.Booster) -> None:
    _save(tmp_path, binary)
    model = _load(tmp_path, parameters={"nthread": 1})
    np.testing.assert_allclose(
        model.predict({"input": ROWS})["predict"], _reference(binary, ROWS), rtol=1e-6
    )
    with pytest.raises(ModelLoadError, match="nthread"):
        _load(tmp_path, parameters={"nthread": "two"})


def test_wrong_width_is_invalid_input(tmp_path: Path, binary: xgb.Booster) -> None:
    model = _load(_save(tmp_path, binary))
    with pytest.raises(InvalidInput, match="xgboost rejected the input"):
        model.predict({"input": np.zeros((2, 6), np.float32)})
    with pytest.raises(InvalidInput, match="2-D numeric"):
        model.predict({"input": np.zeros(4, np.float32)})


def test_corrupt_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "model.json").write_bytes(np.random.default_rng(0).bytes(64))
    with pytest.raises(ModelLoadError, match=r"model\.json: xgboost cannot load it") as info:
        _load(tmp_path)
    assert "Stack trace" not in info.value.message


def test_file_choice(tmp_path: Path, binary: xgb.Booster) -> None:
    _save(tmp_path, binary, "a.ubj")
    _save(tmp_path, binary, "b.bst")
    with pytest.raises(ModelLoadError, match=r"a\.ubj, b\.bst"):
        _load(tmp_path)
    _save(tmp_path, binary)
    assert _load(tmp_path).inputs[0].shape == (-1, 4)


@pytest.mark.parametrize("name", ["model.json", "model.ubj", "model.bst", "model.xgb"])
def test_infer_runtime(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"")
    assert infer_runtime(tmp_path) == "xgboost"
