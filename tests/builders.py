"""Small real models of every runtime, written into a model repository for the tests."""

from __future__ import annotations

import textwrap
import warnings
from pathlib import Path

import numpy as np
import yaml


def write_config(model_dir: Path, config: dict[str, object]) -> None:
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "config.yaml").write_text(yaml.safe_dump(config))


def onnx_add_mul(path: Path, scale: float = 2.0) -> None:
    """y = x * scale + 1 over float32 [batch, 4]; z = argmax-free int64 copy of the row count."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])
    s = helper.make_tensor("s", TensorProto.FLOAT, [], [scale])
    one = helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])
    graph = helper.make_graph(
        [helper.make_node("Mul", ["x", "s"], ["t"]), helper.make_node("Add", ["t", "one"], ["y"])],
        "add_mul",
        [x],
        [y],
        [s, one],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def onnx_all_types(path: Path) -> None:
    """Identity over one input per datatype ONNX Runtime takes (outputs named out_<type>)."""
    import onnx
    from onnx import TensorProto, helper

    types = {
        "bool": TensorProto.BOOL,
        "uint8": TensorProto.UINT8,
        "uint16": TensorProto.UINT16,
        "uint32": TensorProto.UINT32,
        "uint64": TensorProto.UINT64,
        "int8": TensorProto.INT8,
        "int16": TensorProto.INT16,
        "int32": TensorProto.INT32,
        "int64": TensorProto.INT64,
        "fp16": TensorProto.FLOAT16,
        "fp32": TensorProto.FLOAT,
        "fp64": TensorProto.DOUBLE,
        "bytes": TensorProto.STRING,
    }
    inputs, outputs, nodes = [], [], []
    for name, t in types.items():
        inputs.append(helper.make_tensor_value_info(f"in_{name}", t, ["batch", 2]))
        outputs.append(helper.make_tensor_value_info(f"out_{name}", t, ["batch", 2]))
        nodes.append(helper.make_node("Identity", [f"in_{name}"], [f"out_{name}"]))
    graph = helper.make_graph(nodes, "all_types", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def sklearn_regressor(path: Path) -> None:
    import joblib
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + 3.0
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(LinearRegression().fit(x, y), path)


def xgboost_model(path: Path) -> None:
    import xgboost as xgb

    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(np.float32)
    booster = xgb.train(
        {"objective": "binary:logistic", "max_depth": 3, "nthread": 1},
        xgb.DMatrix(x, label=y),
        num_boost_round=5,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(path))


def lightgbm_model(path: Path) -> None:
    import lightgbm as lgb

    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 4))
    y = x[:, 0] * 2 - x[:, 2]
    booster = lgb.train(
        {"objective": "regression", "verbose": -1, "num_threads": 1, "min_data_in_leaf": 5},
        lgb.Dataset(x, label=y),
        num_boost_round=5,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(path))


def torchscript_model(path: Path) -> None:
    import torch

    class Doubler(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 2.0 - 1.0

    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        # torch 2.13 deprecates TorchScript in favour of torch.export; it still works.
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(Doubler()).save(str(path))


PYTHON_MODEL = textwrap.dedent(
    """
    import numpy as np

    class Model:
        inputs = [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
        outputs = [{"name": "length", "datatype": "INT64", "shape": [-1]},
                   {"name": "upper", "datatype": "BYTES", "shape": [-1]}]

        def load(self, model_dir):
            self.suffix = open(model_dir + "/suffix.txt").read().strip().encode()

        def preprocess(self, inputs):
            return {"text": inputs["text"]}

        def predict(self, inputs):
            text = inputs["text"]
            return {
                "length": np.array([len(t) for t in text], dtype=np.int64),
                "upper": np.array([t.upper() + self.suffix for t in text], dtype=object),
            }
    """
)


def python_model(version_dir: Path) -> None:
    version_dir.mkdir(parents=True, exist_ok=True)
    (version_dir / "model.py").write_text(PYTHON_MODEL)
    (version_dir / "suffix.txt").write_text("!\n")
