"""Fixtures: a model repository with every runtime, and a real server over it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pier.serving import demo
from tests import builders as b
from tests.integration.server import PierServer


def write_repository(root: Path) -> Path:
    """Every runtime, batching, labels and several versions: what the suite serves."""
    (root / "half_plus_two" / "1").mkdir(parents=True)
    (root / "half_plus_two" / "1" / "model.onnx").write_bytes(demo.half_plus_two_onnx())
    (root / "iris" / "1").mkdir(parents=True)
    (root / "iris" / "1" / "model.joblib").write_bytes(demo.iris_joblib())
    b.write_config(
        root / "iris",
        {
            "runtime": "sklearn",
            "feature_names": ["sepal_length", "sepal_width", "petal_length", "petal_width"],
            "class_labels": ["setosa", "versicolor", "virginica"],
            "parameters": {"method": ["predict", "predict_proba"]},
        },
    )
    # Three versions, two served, with labels.
    for version, scale in ((1, 2.0), (2, 3.0), (3, 4.0)):
        b.onnx_add_mul(root / "scaler" / str(version) / "model.onnx", scale)
    b.write_config(
        root / "scaler",
        {"version_policy": {"specific": [1, 2]}, "version_labels": {"stable": 1, "canary": 2}},
    )
    b.onnx_add_mul(root / "batched" / "1" / "model.onnx", 2.0)
    b.write_config(
        root / "batched",
        {
            "dynamic_batching": {"max_batch_size": 8, "max_queue_delay_ms": 20},
            "execution": "thread",
        },
    )
    b.onnx_all_types(root / "all_types" / "1" / "model.onnx")
    b.sklearn_regressor(root / "linear" / "1" / "model.joblib")
    b.xgboost_model(root / "xgb" / "1" / "model.json")
    b.lightgbm_model(root / "lgbm" / "1" / "model.txt")
    b.torchscript_model(root / "torch" / "1" / "model.pt")
    b.write_config(
        root / "torch",
        {
            "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}],
            "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 3]}],
        },
    )
    b.python_model(root / "pyfunc" / "1")
    # A corrupt model must fail alone and say why.
    (root / "broken" / "1").mkdir(parents=True)
    (root / "broken" / "1" / "model.onnx").write_bytes(b"this is not an onnx file")
    return root


@pytest.fixture(scope="session")
def model_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_repository(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def server(model_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[PierServer]:
    srv = PierServer(model_repo, tmp_path_factory.mktemp("logs"), "--no-strict-readiness")
    srv.wait_ready()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def url(server: PierServer) -> str:
    return server.url
