"""The ONNX runtime on small graphs built with onnx.helper."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from pier.errors import InternalError, InvalidInput, ModelLoadError
from pier.serving.model import Model
from pier.serving.modelconfig import ModelConfig
from pier.serving.runtimes import infer_runtime, model_class
from pier.serving.tensors import TensorSpec

WEIGHTS = [1.0, 2.0, 3.0]


def _graph_model() -> onnx.ModelProto:
    """y = x * w, text = identity(words), and a sequence output that Pier cannot serve."""
    inputs = [
        helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 3]),
        helper.make_tensor_value_info("words", TensorProto.STRING, [None]),
    ]
    outputs = [
        helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3]),
        helper.make_tensor_value_info("text", TensorProto.STRING, [None]),
        helper.make_tensor_sequence_value_info("parts", TensorProto.FLOAT, None),
    ]
    nodes = [
        helper.make_node("Mul", ["x", "w"], ["y"]),
        helper.make_node("Identity", ["words"], ["text"]),
        helper.make_node("SequenceConstruct", ["y"], ["parts"]),
    ]
    weights = helper.make_tensor("w", TensorProto.FLOAT, [3], WEIGHTS)
    graph = helper.make_graph(nodes, "pier_test", inputs, outputs, [weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


@pytest.fixture(scope="module")
def graph_bytes() -> bytes:
    return _graph_model().SerializeToString()


@pytest.fixture
def version_dir(tmp_path: Path, graph_bytes: bytes) -> Path:
    (tmp_path / "model.onnx").write_bytes(graph_bytes)
    return tmp_path


def _load(path: Path, **config: Any) -> Model:
    model = model_class("onnx")(path, ModelConfig.model_validate(config))
    model.load()
    return model


def test_metadata_comes_from_the_graph(version_dir: Path) -> None:
    model = _load(version_dir)
    assert model.platform == "onnxruntime_onnx"
    assert model.inputs == [TensorSpec("x", "FP32", (-1, 3)), TensorSpec("words", "BYTES", (-1,))]
    # the sequence output is left out
    assert model.outputs == [TensorSpec("y", "FP32", (-1, 3)), TensorSpec("text", "BYTES", (-1,))]
    assert model.batched


def test_predict_matches_onnxruntime(version_dir: Path) -> None:
    model = _load(version_dir)
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    words = np.array([b"caf\xc3\xa9", b"tea"], dtype=object)
    out = model.predict({"x": x, "words": words})

    session = ort.InferenceSession(
        str(version_dir / "model.onnx"), providers=["CPUExecutionProvider"]
    )
    (expected,) = session.run(["y"], {"x": x, "words": np.array(["café", "tea"], dtype=object)})
    assert set(out) == {"y", "text"}
    assert out["y"].dtype == np.float32
    np.testing.assert_array_equal(out["y"], expected)
    assert out["text"].dtype == object
    assert list(out["text"]) == [b"caf\xc3\xa9", b"tea"]


def test_fp64_input_is_cast_to_the_graph_dtype(version_dir: Path) -> None:
    model = _load(version_dir)
    x = np.ones((1, 3), dtype=np.float64)
    out = model.predict({"x": x, "words": np.array([b"a"], dtype=object)})
    np.testing.assert_array_equal(out["y"], np.array([WEIGHTS], dtype=np.float32))


def test_bad_inputs_raise_invalid_input(version_dir: Path) -> None:
    model = _load(version_dir)
    words = np.array([b"a"], dtype=object)
    with pytest.raises(InvalidInput, match="missing input 'words'"):
        model.predict({"x": np.ones((1, 3), np.float32)})
    with pytest.raises(InvalidInput, match="onnxruntime rejected"):
        model.predict({"x": np.ones((1, 4), np.float32), "words": words})
    with pytest.raises(InvalidInput, match="UTF-8"):
        model.predict(
            {"x": np.ones((1, 3), np.float32), "words": np.array([b"\xff"], dtype=object)}
        )
    with pytest.raises(InvalidInput, match="expects FP32"):
        model.predict({"x": np.ones((1, 3), np.complex64), "words": words})


def test_declared_outputs_select_what_runs(version_dir: Path) -> None:
    model = _load(version_dir, outputs=[{"name": "y", "datatype": "FP32", "shape": [-1, 3]}])
    out = model.predict({"x": np.ones((1, 3), np.float32), "words": np.array([b"a"], dtype=object)})
    assert list(out) == ["y"]


def test_declared_names_must_exist(version_dir: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"inputs \['z'\]"):
        _load(version_dir, inputs=[{"name": "z", "datatype": "FP32", "shape": [-1, 3]}])


def test_declared_shape_without_batch_dim_turns_batching_off(version_dir: Path) -> None:
    model = _load(version_dir, inputs=[{"name": "x", "datatype": "FP32", "shape": [2, 3]}])
    assert model.inputs == [TensorSpec("x", "FP32", (2, 3))]
    assert not model.batched


def test_session_parameters(version_dir: Path) -> None:
    params = {"intra_op_threads": 1, "inter_op_threads": 1, "graph_optimization_level": "basic"}
    model = _load(version_dir, parameters=params)
    assert model.outputs[0].name == "y"
    with pytest.raises(ModelLoadError, match="graph_optimization_level"):
        _load(version_dir, parameters={"graph_optimization_level": "max"})
    with pytest.raises(ModelLoadError, match="intra_op_threads"):
        _load(version_dir, parameters={"intra_op_threads": -1})


def test_corrupt_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "model.onnx").write_bytes(np.random.default_rng(0).bytes(64))
    with pytest.raises(ModelLoadError, match=r"model\.onnx: onnxruntime cannot load it"):
        _load(tmp_path)


def test_file_choice(tmp_path: Path, graph_bytes: bytes) -> None:
    with pytest.raises(ModelLoadError, match=r"no \.onnx file"):
        _load(tmp_path)
    (tmp_path / "a.onnx").write_bytes(graph_bytes)
    (tmp_path / "b.onnx").write_bytes(graph_bytes)
    with pytest.raises(ModelLoadError, match=r"a\.onnx, b\.onnx"):
        _load(tmp_path)
    (tmp_path / "model.onnx").write_bytes(graph_bytes)
    assert _load(tmp_path).inputs[0].name == "x"


def test_infer_runtime(version_dir: Path) -> None:
    assert infer_runtime(version_dir) == "onnx"


def test_unload_drops_the_session(version_dir: Path) -> None:
    model = _load(version_dir)
    model.unload()
    with pytest.raises(InternalError, match="not loaded"):
        model.predict({"x": np.ones((1, 3), np.float32), "words": np.array([b"a"], dtype=object)})


def test_allow_spinning_must_be_a_bool(tmp_path: Path) -> None:
    from tests import builders

    builders.onnx_add_mul(tmp_path / "model.onnx")
    cls = model_class("onnx")
    model = cls(tmp_path, ModelConfig(parameters={"allow_spinning": True}))
    model.load()  # accepted either way
    with pytest.raises(ModelLoadError, match="allow_spinning"):
        cls(tmp_path, ModelConfig(parameters={"allow_spinning": "yes"})).load()
