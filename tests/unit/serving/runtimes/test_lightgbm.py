"""The LightGBM runtime on boosters trained on a few hundred random rows."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pytest

from pier.errors import InvalidInput, ModelLoadError, Unsupported
from pier.serving.model import Model
from pier.serving.modelconfig import ModelConfig
from pier.serving.runtimes import infer_runtime, model_class
from pier.serving.tensors import TensorSpec

RNG = np.random.default_rng(11)
X = RNG.normal(size=(300, 4))
ROWS = X[:8]


def _train(objective: str, label: np.ndarray[Any, Any], **params: Any) -> lgb.Booster:
    params = {"objective": objective, "verbose": -1, "num_threads": 1, **params}
    return lgb.train(params, lgb.Dataset(X, label=label), num_boost_round=4)


@pytest.fixture(scope="module")
def binary() -> lgb.Booster:
    return _train("binary", (X[:, 0] > 0).astype(int))


@pytest.fixture(scope="module")
def multi() -> lgb.Booster:
    return _train("multiclass", np.digitize(X[:, 1], [-0.5, 0.5]), num_class=3)


@pytest.fixture(scope="module")
def regression() -> lgb.Booster:
    return _train("regression", X[:, 0] * 2 + X[:, 2])


def _save(folder: Path, booster: lgb.Booster, name: str = "model.txt") -> Path:
    booster.save_model(str(folder / name))
    return folder


def _load(path: Path, **config: Any) -> Model:
    model = model_class("lightgbm")(path, ModelConfig.model_validate(config))
    model.load()
    return model


def test_binary(tmp_path: Path, binary: lgb.Booster) -> None:
    model = _load(_save(tmp_path, binary))
    assert model.platform == "lightgbm"
    assert not model.thread_safe
    assert model.inputs == [TensorSpec("input", "FP64", (-1, 4))]
    assert model.outputs == [TensorSpec("predict", "FP64", (-1,))]
    assert model.batched
    assert model.feature_names == ["Column_0", "Column_1", "Column_2", "Column_3"]

    out = model.predict({"input": ROWS})
    p = binary.predict(ROWS)
    assert out["predict"].dtype == np.float64
    np.testing.assert_allclose(out["predict"], p)

    labels, scores = model.classify(ROWS)
    assert labels == ["0", "1"]
    np.testing.assert_allclose(scores, np.stack([1 - p, p], axis=1))
    with pytest.raises(Unsupported, match="not a regression"):
        model.regress(ROWS)


def test_fp32_input_is_accepted(tmp_path: Path, binary: lgb.Booster) -> None:
    model = _load(_save(tmp_path, binary))
    out = model.predict({"input": ROWS.astype(np.float32)})
    np.testing.assert_allclose(out["predict"], binary.predict(ROWS.astype(np.float32)))


def test_multiclass(tmp_path: Path, multi: lgb.Booster) -> None:
    model = _load(_save(tmp_path, multi, "model.lgb"))
    assert model.outputs == [TensorSpec("predict", "FP64", (-1, 3))]
    np.testing.assert_allclose(model.predict({"input": ROWS})["predict"], multi.predict(ROWS))
    labels, scores = model.classify(ROWS)
    assert labels == ["0", "1", "2"]
    np.testing.assert_allclose(scores, multi.predict(ROWS))


def test_class_labels_and_feature_names(tmp_path: Path, multi: lgb.Booster) -> None:
    _save(tmp_path, multi)
    model = _load(tmp_path, class_labels=["low", "mid", "high"], feature_names=["a", "b", "c", "d"])
    assert model.classify(ROWS)[0] == ["low", "mid", "high"]
    assert model.feature_names == ["a", "b", "c", "d"]
    with pytest.raises(ModelLoadError, match="4 labels"):
        _load(tmp_path, class_labels=["a", "b", "c", "d"])


def test_regression(tmp_path: Path, regression: lgb.Booster) -> None:
    model = _load(_save(tmp_path, regression), parameters={"num_threads": 1})
    expected = regression.predict(ROWS)
    np.testing.assert_allclose(model.predict({"input": ROWS})["predict"], expected)
    np.testing.assert_allclose(model.regress(ROWS), expected)
    with pytest.raises(Unsupported, match="classify needs"):
        model.classify(ROWS)


def test_bad_parameter(tmp_path: Path, regression: lgb.Booster) -> None:
    with pytest.raises(ModelLoadError, match="num_threads"):
        _load(_save(tmp_path, regression), parameters={"num_threads": -2})


def test_wrong_width_is_invalid_input(tmp_path: Path, binary: lgb.Booster) -> None:
    model = _load(_save(tmp_path, binary))
    with pytest.raises(InvalidInput, match="lightgbm rejected the input"):
        model.predict({"input": np.zeros((2, 6))})
    with pytest.raises(InvalidInput, match="2-D numeric"):
        model.predict({"input": np.array([[b"x"]], dtype=object)})


def test_corrupt_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "model.txt").write_bytes(np.random.default_rng(0).bytes(64))
    with pytest.raises(ModelLoadError, match=r"model\.txt: lightgbm cannot load it"):
        _load(tmp_path)


def test_file_choice(tmp_path: Path, binary: lgb.Booster) -> None:
    _save(tmp_path, binary, "a.lgb")
    _save(tmp_path, binary, "b.lgb")
    with pytest.raises(ModelLoadError, match=r"a\.lgb, b\.lgb"):
        _load(tmp_path)
    _save(tmp_path, binary)
    assert _load(tmp_path).inputs[0].shape == (-1, 4)


@pytest.mark.parametrize("name", ["model.txt", "trees.lgb"])
def test_infer_runtime(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"")
    assert infer_runtime(tmp_path) == "lightgbm"
