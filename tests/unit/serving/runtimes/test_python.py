"""The Python runtime on model.py files written by the tests."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pier.errors import InternalError, InvalidInput, ModelLoadError
from pier.serving.model import Model
from pier.serving.modelconfig import ModelConfig
from pier.serving.runtimes import infer_runtime, model_class
from pier.serving.tensors import TensorSpec

FULL = """
    import numpy as np
    from pier.errors import InvalidInput

    calls = []

    class Model:
        inputs = [{"name": "x", "datatype": "FP32", "shape": [-1, 2]}]
        outputs = [{"name": "y", "datatype": "FP32", "shape": [-1]}]
        thread_safe = True

        def load(self, model_dir):
            with open(model_dir + "/offset.txt") as f:
                self.offset = float(f.read())

        def preprocess(self, inputs):
            calls.append("pre")
            return {"x": inputs["x"] * 2}

        def predict(self, inputs):
            calls.append("predict")
            x = inputs["x"]
            if x.shape[0] == 0:
                raise InvalidInput("empty batch")
            if x.shape[0] > 100:
                raise ValueError("too many rows")
            return {"y": x.sum(axis=1) + self.offset}

        def postprocess(self, outputs):
            calls.append("post")
            return {"y": outputs["y"], "label": np.array(["big" if v > 10 else "small" for v in outputs["y"]])}

        def unload(self):
            calls.append("unload")
"""


def _write(folder: Path, source: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.py").write_text(textwrap.dedent(source), encoding="utf-8")
    return folder


def _load(path: Path, **config: Any) -> Model:
    model = model_class("python")(path, ModelConfig.model_validate(config))
    model.load()
    return model


@pytest.fixture
def full(tmp_path: Path) -> Path:
    (tmp_path / "offset.txt").write_text("0.5")
    return _write(tmp_path, FULL)


def test_metadata_and_thread_safety(full: Path) -> None:
    model = _load(full)
    assert model.platform == "python"
    assert model.inputs == [TensorSpec("x", "FP32", (-1, 2))]
    assert model.outputs == [TensorSpec("y", "FP32", (-1,))]
    assert model.batched
    assert model.thread_safe
    assert not type(model).thread_safe


def test_request_flow(full: Path) -> None:
    model = _load(full)
    x = np.array([[1, 2], [3, 4]], dtype=np.float32)
    out = model.predict({"x": x})
    np.testing.assert_allclose(out["y"], [6.5, 14.5])
    assert out["label"].dtype == object
    assert list(out["label"]) == [b"small", b"big"]
    calls = sys.modules[type(model._user).__module__].calls  # type: ignore[attr-defined]
    assert calls == ["pre", "predict", "post"]
    model.unload()
    assert calls[-1] == "unload"
    with pytest.raises(InternalError, match="not loaded"):
        model.predict({"x": x})


def test_user_errors_in_predict(full: Path) -> None:
    model = _load(full)
    with pytest.raises(InternalError, match="model raised ValueError: too many rows"):
        model.predict({"x": np.zeros((101, 2), np.float32)})
    with pytest.raises(InvalidInput, match="empty batch"):
        model.predict({"x": np.zeros((0, 2), np.float32)})
    with pytest.raises(InternalError, match="model raised KeyError"):
        model.predict({"z": np.zeros((1, 2), np.float32)})


def test_config_declarations_win(full: Path) -> None:
    model = _load(full, inputs=[{"name": "x", "datatype": "FP64", "shape": [4, 2]}])
    assert model.inputs == [TensorSpec("x", "FP64", (4, 2))]
    assert not model.batched


def test_bare_array_output(tmp_path: Path) -> None:
    source = """
        class Model:
            def predict(self, inputs):
                return inputs["a"] + 1
    """
    model = _load(_write(tmp_path, source))
    assert model.inputs == [] and model.outputs == []
    assert not model.batched
    assert not model.thread_safe
    np.testing.assert_array_equal(model.predict({"a": np.array([1, 2])})["output"], [2, 3])
    declared = _load(tmp_path, outputs=[{"name": "b", "datatype": "INT64", "shape": [-1]}])
    assert list(declared.predict({"a": np.array([1])})) == ["b"]


def test_class_parameter(tmp_path: Path) -> None:
    source = """
        class Doubler:
            def predict(self, inputs):
                return {"y": inputs["x"] * 2}
    """
    _write(tmp_path, source)
    model = _load(tmp_path, parameters={"class": "Doubler"})
    np.testing.assert_array_equal(model.predict({"x": np.array([3])})["y"], [6])
    with pytest.raises(ModelLoadError, match="no class named 'Model'"):
        _load(tmp_path)


def test_code_kept_apart_from_the_model_files(tmp_path: Path) -> None:
    # EAS keeps a custom processor's code (processor_path) apart from the model data.
    source = """
        class Model:
            def load(self, model_dir):
                with open(model_dir + "/scale.txt") as f:
                    self.scale = float(f.read())

            def predict(self, inputs):
                return {"y": inputs["x"] * self.scale}
    """
    code = tmp_path / "code"
    code.mkdir()
    (code / "serve.py").write_text(textwrap.dedent(source), encoding="utf-8")
    data = tmp_path / "data"
    data.mkdir()
    (data / "scale.txt").write_text("3")
    x = {"x": np.array([2.0])}
    model = _load(data, parameters={"code_path": str(code), "entry": "serve.py"})
    np.testing.assert_array_equal(model.predict(x)["y"], [6.0])
    model = _load(data, parameters={"code_path": str(code / "serve.py")})
    np.testing.assert_array_equal(model.predict(x)["y"], [6.0])
    with pytest.raises(ModelLoadError, match=r"no model\.py found"):
        _load(data, parameters={"code_path": str(code)})
    with pytest.raises(ModelLoadError, match="must be a local folder"):
        _load(data, parameters={"code_path": "s3://bucket/code"})
    with pytest.raises(ModelLoadError, match=r"entry must be a \.py file"):
        _load(data, parameters={"code_path": str(code), "entry": "../x.py"})


def test_versions_do_not_share_module_state(tmp_path: Path) -> None:
    source = """
        counter = [0]

        class Model:
            def predict(self, inputs):
                counter[0] += 1
                return {"n": counter[0]}
    """
    one = _load(_write(tmp_path / "1", source))
    two = _load(_write(tmp_path / "2", source))
    one.predict({})
    one.predict({})
    assert int(two.predict({})["n"]) == 1


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("def broken(:\n", r"model\.py: import failed: SyntaxError"),
        ("import no_such_module_xyz\n", r"import failed: ModuleNotFoundError.*line 1"),
        (
            "class Model:\n    def load(self, d):\n        raise RuntimeError('no weights')\n"
            "    def predict(self, inputs):\n        return inputs\n",
            r"load\(\) raised RuntimeError: no weights \(model\.py line 3\)",
        ),
        ("class Model:\n    pass\n", "has no predict method"),
        (
            "class Model:\n    async def predict(self, inputs):\n        return inputs\n",
            "not async",
        ),
        (
            "class Model:\n    inputs = [{'name': 'x', 'datatype': 'FLOAT9', 'shape': [1]}]\n"
            "    def predict(self, inputs):\n        return inputs\n",
            r"Model\.inputs\[0\] is invalid: datatype: .*FLOAT9",
        ),
    ],
)
def test_load_errors(tmp_path: Path, source: str, message: str) -> None:
    _write(tmp_path, source)
    before = set(sys.modules)
    with pytest.raises(ModelLoadError, match=message):
        _load(tmp_path)
    assert not {m for m in set(sys.modules) - before if m.startswith("_pier_user_model_")}


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"no model\.py"):
        _load(tmp_path)


def test_bad_output_type(tmp_path: Path) -> None:
    source = """
        class Model:
            def predict(self, inputs):
                return {"y": [object()]}
    """
    model = _load(_write(tmp_path, source))
    with pytest.raises(InternalError, match="output 'y'"):
        model.predict({})


def test_infer_runtime(full: Path) -> None:
    (full / "weights.pt").write_bytes(b"")  # model.py wins over other files
    assert infer_runtime(full) == "python"
