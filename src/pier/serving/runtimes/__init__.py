"""Runtime registry: names to Model classes (imported lazily), and inference from files."""

from __future__ import annotations

import importlib
from pathlib import Path

from pier.errors import ConfigError, ModelLoadError
from pier.serving.model import Model

# runtime name -> (module, class, pip extra that provides its library)
RUNTIMES: dict[str, tuple[str, str, str]] = {
    "onnx": ("pier.serving.runtimes.onnx", "OnnxModel", "onnx"),
    "sklearn": ("pier.serving.runtimes.sklearn", "SklearnModel", "sklearn"),
    "xgboost": ("pier.serving.runtimes.xgboost", "XGBoostModel", "xgboost"),
    "lightgbm": ("pier.serving.runtimes.lightgbm", "LightGBMModel", "lightgbm"),
    "pytorch": ("pier.serving.runtimes.pytorch", "TorchScriptModel", "pytorch"),
    "python": ("pier.serving.runtimes.python", "PythonModel", ""),
}

# file suffix -> runtime, in the order they are tried
_SUFFIXES: tuple[tuple[str, str], ...] = (
    (".onnx", "onnx"),
    (".pt", "pytorch"),
    (".pth", "pytorch"),
    (".torchscript", "pytorch"),
    (".ubj", "xgboost"),
    (".bst", "xgboost"),
    (".xgb", "xgboost"),
    (".lgb", "lightgbm"),
    (".joblib", "sklearn"),
    (".pkl", "sklearn"),
    (".pickle", "sklearn"),
)


def infer_runtime(version_dir: Path) -> str:
    """Guess the runtime from the files in a version folder, or raise ConfigError."""
    if (version_dir / "model.py").is_file():
        return "python"
    names = sorted(p.name for p in version_dir.iterdir() if p.is_file())
    for suffix, runtime in _SUFFIXES:
        if any(n.endswith(suffix) for n in names):
            return runtime
    # Text and JSON files are ambiguous: look at the conventional names.
    if "model.json" in names:
        return "xgboost"
    if "model.txt" in names:
        return "lightgbm"
    raise ConfigError(
        f"{version_dir}: cannot tell the runtime from the files ({', '.join(names) or 'none'}); "
        f"set 'runtime' in the model's config.yaml to one of {', '.join(RUNTIMES)}"
    )


def model_class(runtime: str) -> type[Model]:
    """Import and return the Model class of a runtime; say which extra to install if missing."""
    try:
        module_name, class_name, extra = RUNTIMES[runtime]
    except KeyError:
        raise ConfigError(
            f"unknown runtime '{runtime}'; expected one of {', '.join(RUNTIMES)}"
        ) from None
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = f"; install it with: pip install 'pier[{extra}]'" if extra else ""
        raise ModelLoadError(f"runtime '{runtime}' is not available ({exc}){hint}") from None
    cls: type[Model] = getattr(module, class_name)
    return cls
