"""The TorchScript runtime on small scripted modules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest
import torch

from pier.errors import InternalError, InvalidInput, ModelLoadError
from pier.serving.model import Model
from pier.serving.modelconfig import ModelConfig
from pier.serving.runtimes import infer_runtime, model_class
from pier.serving.tensors import TensorSpec

# TorchScript is deprecated upstream from torch 2.13, yet it is the format this runtime
# serves; only these three notices are silenced.
pytestmark = [
    pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:`torch.jit.save` is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning"),
]


class AddAndDouble(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(2.0))

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return x + y, x * self.scale


class Named(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"total": x.sum(dim=1), "half": x / 2}


class WithDefault(torch.nn.Module):
    def forward(self, x: torch.Tensor, bias: float = 1.0) -> torch.Tensor:
        return x + bias


def _save(folder: Path, module: torch.nn.Module, name: str = "model.pt") -> Path:
    torch.jit.save(torch.jit.script(module), str(folder / name))
    return folder


def _load(path: Path, **config: Any) -> Model:
    model = model_class("pytorch")(path, ModelConfig.model_validate(config))
    model.load()
    return model


X = np.arange(6, dtype=np.float32).reshape(2, 3)
Y = np.ones((2, 3), dtype=np.float32)


def test_without_declarations(tmp_path: Path) -> None:
    model = _load(_save(tmp_path, AddAndDouble()))
    assert model.platform == "pytorch_libtorch"
    assert model.inputs == []
    assert model.outputs == []
    assert not model.batched

    out = model.predict({"input__0": X, "input__1": Y})
    reference = torch.jit.load(str(tmp_path / "model.pt"))
    total, doubled = reference(torch.from_numpy(X), torch.from_numpy(Y))
    assert set(out) == {"output__0", "output__1"}
    assert out["output__0"].dtype == np.float32
    np.testing.assert_array_equal(out["output__0"], total.detach().numpy())
    np.testing.assert_array_equal(out["output__1"], doubled.detach().numpy())
    # forward's own argument names work as well
    by_name = model.predict({"x": X, "y": Y})
    np.testing.assert_array_equal(by_name["output__0"], out["output__0"])


def test_with_declarations(tmp_path: Path) -> None:
    config = {
        "inputs": [
            {"name": "a", "datatype": "FP32", "shape": [-1, 3]},
            {"name": "b", "datatype": "FP32", "shape": [-1, 3]},
        ],
        "outputs": [
            {"name": "sum", "datatype": "FP32", "shape": [-1, 3]},
            {"name": "double", "datatype": "FP32", "shape": [-1, 3]},
        ],
    }
    model = _load(_save(tmp_path, AddAndDouble()), **config)
    assert model.inputs == [TensorSpec("a", "FP32", (-1, 3)), TensorSpec("b", "FP32", (-1, 3))]
    assert [t.name for t in model.outputs] == ["sum", "double"]
    assert model.batched
    out = model.predict({"b": Y, "a": X})
    np.testing.assert_array_equal(out["sum"], X + Y)
    np.testing.assert_array_equal(out["double"], X * 2)


def test_declared_output_count_must_match(tmp_path: Path) -> None:
    outputs = [{"name": "only", "datatype": "FP32", "shape": [-1, 3]}]
    model = _load(_save(tmp_path, AddAndDouble()), outputs=outputs)
    with pytest.raises(InternalError, match="returned 2 outputs"):
        model.predict({"input__0": X, "input__1": Y})


def test_too_many_declared_inputs(tmp_path: Path) -> None:
    inputs = [{"name": n, "datatype": "FP32", "shape": [-1]} for n in "abc"]
    with pytest.raises(ModelLoadError, match="forward takes 2"):
        _load(_save(tmp_path, AddAndDouble()), inputs=inputs)


def test_dict_outputs_keep_their_keys(tmp_path: Path) -> None:
    model = _load(_save(tmp_path, Named(), "net.torchscript"))
    out = model.predict({"input__0": X})
    np.testing.assert_array_equal(out["total"], X.sum(axis=1))
    np.testing.assert_array_equal(out["half"], X / 2)


def test_arguments_with_defaults_may_be_left_out(tmp_path: Path) -> None:
    model = _load(_save(tmp_path, WithDefault(), "model.pth"))
    np.testing.assert_array_equal(model.predict({"input__0": X})["output__0"], X + 1)


def test_read_only_input(tmp_path: Path) -> None:
    model = _load(_save(tmp_path, Named()))
    frozen = np.frombuffer(X.tobytes(), dtype=np.float32).reshape(2, 3)
    assert not frozen.flags.writeable
    np.testing.assert_array_equal(model.predict({"input__0": frozen})["total"], X.sum(axis=1))


def test_bfloat16_round_trip(tmp_path: Path) -> None:
    model = _load(_save(tmp_path, Named()))
    x = X.astype(ml_dtypes.bfloat16)
    out = model.predict({"input__0": x})
    assert out["half"].dtype == np.dtype(ml_dtypes.bfloat16)
    np.testing.assert_array_equal(out["half"].astype(np.float32), X / 2)


def test_request_errors(tmp_path: Path) -> None:
    model = _load(_save(tmp_path, AddAndDouble()))
    with pytest.raises(InvalidInput, match="missing input 'input__1'"):
        model.predict({"input__0": X})
    with pytest.raises(InvalidInput, match="BYTES"):
        model.predict({"input__0": np.array([b"a"], dtype=object), "input__1": Y})
    with pytest.raises(InternalError, match="TorchScript forward failed"):
        model.predict({"input__0": X, "input__1": np.ones((4, 5), np.float32)})


def test_num_threads(tmp_path: Path) -> None:
    before = torch.get_num_threads()
    try:
        _load(_save(tmp_path, Named()), parameters={"num_threads": 1})
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
    with pytest.raises(ModelLoadError, match="num_threads"):
        _load(tmp_path, parameters={"num_threads": 1.5})


def test_state_dict_is_refused(tmp_path: Path) -> None:
    torch.save(AddAndDouble().state_dict(), str(tmp_path / "model.pt"))
    with pytest.raises(ModelLoadError, match=r"model\.pt: torch\.jit\.load failed.*TorchScript"):
        _load(tmp_path)


def test_corrupt_file_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "model.pt").write_bytes(np.random.default_rng(0).bytes(64))
    with pytest.raises(ModelLoadError, match=r"model\.pt: torch\.jit\.load failed"):
        _load(tmp_path)


def test_file_choice(tmp_path: Path) -> None:
    _save(tmp_path, Named(), "a.pt")
    _save(tmp_path, Named(), "b.pth")
    with pytest.raises(ModelLoadError, match=r"a\.pt, b\.pth"):
        _load(tmp_path)
    _save(tmp_path, AddAndDouble())
    assert set(_load(tmp_path).predict({"x": X, "y": Y})) == {"output__0", "output__1"}


@pytest.mark.parametrize("name", ["model.pt", "model.pth", "model.torchscript"])
def test_infer_runtime(tmp_path: Path, name: str) -> None:
    (tmp_path / name).write_bytes(b"")
    assert infer_runtime(tmp_path) == "pytorch"
