"""Every registered runtime resolves to its class, and importing them pulls no ML library."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pier.serving.runtimes import RUNTIMES, model_class

PLATFORMS = {
    "onnx": "onnxruntime_onnx",
    "sklearn": "sklearn",
    "xgboost": "xgboost",
    "lightgbm": "lightgbm",
    "pytorch": "pytorch_libtorch",
    "python": "python",
}


@pytest.mark.parametrize("runtime", sorted(RUNTIMES))
def test_class_names_and_platforms(runtime: str) -> None:
    cls = model_class(runtime)
    assert cls.__name__ == RUNTIMES[runtime][1]
    assert cls.runtime == runtime
    assert cls.platform == PLATFORMS[runtime]


def test_runtime_modules_import_no_heavy_library() -> None:
    heavy = ["torch", "onnxruntime", "onnx", "sklearn", "joblib", "xgboost", "lightgbm"]
    modules = [module for module, _, _ in RUNTIMES.values()]
    script = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(','.join(m for m in {heavy!r} if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == ""
