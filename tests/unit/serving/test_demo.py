"""The generated demo repository: layout, configs, and that each model computes what it claims."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pier.serving.demo import write_demo_repository
from pier.serving.modelconfig import load_config

MODELS = ["half_plus_two", "resnet50", "iris"]


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    assert write_demo_repository(root) == MODELS
    return root


def _snapshot(root: Path) -> dict[str, tuple[str, int]]:
    return {
        str(p.relative_to(root)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_layout_and_configs(repo: Path) -> None:
    assert sorted(str(p.relative_to(repo)) for p in repo.rglob("*") if p.is_file()) == [
        "half_plus_two/1/model.onnx",
        "half_plus_two/config.yaml",
        "iris/1/model.joblib",
        "iris/config.yaml",
        "resnet50/1/model.onnx",
        "resnet50/config.yaml",
    ]
    hp2 = load_config(repo / "half_plus_two")
    assert hp2.runtime == "onnx"
    assert hp2.parameters == {"intra_op_threads": 1, "inter_op_threads": 1}
    resnet = load_config(repo / "resnet50")
    assert resnet.runtime == "onnx"
    assert resnet.dynamic_batching is not None
    assert resnet.dynamic_batching.max_batch_size == 16
    iris = load_config(repo / "iris")
    assert iris.runtime == "sklearn"
    assert iris.parameters == {"method": ["predict", "predict_proba"]}
    assert iris.feature_names == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert iris.class_labels == ["setosa", "versicolor", "virginica"]


def test_half_plus_two(repo: Path) -> None:
    import onnx
    import onnxruntime as ort

    path = repo / "half_plus_two" / "1" / "model.onnx"
    onnx.checker.check_model(str(path))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    [x] = session.get_inputs()
    [y] = session.get_outputs()
    assert (x.name, x.type, x.shape) == ("x", "tensor(float)", ["batch"])
    assert (y.name, y.type, y.shape) == ("y", "tensor(float)", ["batch"])
    [out] = session.run(None, {"x": np.array([1.0, 2.0, 5.0], dtype=np.float32)})
    assert out.dtype == np.float32
    assert out.tolist() == [2.5, 3.0, 4.5]


@pytest.mark.slow
def test_resnet50(repo: Path) -> None:
    import onnx
    import onnxruntime as ort

    path = repo / "resnet50" / "1" / "model.onnx"
    model = onnx.load(str(path))
    onnx.checker.check_model(model)
    sizes = {init.name: int(np.prod(init.dims)) for init in model.graph.initializer}
    # torchvision's count leaves out the BatchNorm running statistics.
    params = sum(n for name, n in sizes.items() if not name.endswith((".mean", ".var")))
    assert params == 25_557_032
    assert sum(node.op_type == "Conv" for node in model.graph.node) == 53
    assert not any(
        init.data_location == onnx.TensorProto.EXTERNAL for init in model.graph.initializer
    )

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    [x] = session.get_inputs()
    [y] = session.get_outputs()
    assert (x.name, x.shape) == ("input", ["batch", 3, 224, 224])
    assert (y.name, y.shape) == ("output", ["batch", 1000])
    images = np.random.default_rng(0).standard_normal((2, 3, 224, 224), dtype=np.float32)
    [out] = session.run(None, {"input": images})
    assert out.shape == (2, 1000)
    assert np.isfinite(out).all()
    assert 0.1 < float(out.std()) < 100  # activations neither vanished nor blew up


def test_iris(repo: Path) -> None:
    import joblib
    from sklearn.datasets import load_iris

    model = joblib.load(repo / "iris" / "1" / "model.joblib")
    data = load_iris()
    assert float((model.predict(data.data) == data.target).mean()) > 0.9
    assert model.predict_proba(data.data[:2]).shape == (2, 3)


def test_import_is_light() -> None:
    code = (
        "import sys, pier.serving.demo; "
        "heavy = {'onnx', 'onnxruntime', 'sklearn', 'joblib'} & set(sys.modules); "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_rewrite_is_idempotent_and_repairs(repo: Path) -> None:
    before = _snapshot(repo)
    assert write_demo_repository(repo) == MODELS
    assert _snapshot(repo) == before  # same bytes, and unchanged files were not even touched

    damaged = repo / "half_plus_two" / "1" / "model.onnx"
    damaged.write_bytes(b"not a model")
    (repo / "iris" / "config.yaml").unlink()
    write_demo_repository(repo)
    after = _snapshot(repo)
    assert after.keys() == before.keys()  # no temporary files left behind
    assert {k: v[0] for k, v in after.items()} == {k: v[0] for k, v in before.items()}
    assert after["resnet50/1/model.onnx"] == before["resnet50/1/model.onnx"]
