"""Helpers the runtime modules share: model files, parameters, libraries, tensor metadata."""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from pier.errors import InvalidInput, ModelLoadError, Unsupported
from pier.serving.model import Array
from pier.serving.tensors import TensorSpec


def or_list(words: Sequence[str]) -> str:
    """Words joined as 'a, b or c'."""
    if len(words) < 2:
        return "".join(words)
    return f"{', '.join(words[:-1])} or {words[-1]}"


def find_model_file(
    folder: Path, suffixes: tuple[str, ...], preferred: tuple[str, ...], names: tuple[str, ...] = ()
) -> Path:
    """The version folder's one file with one of the suffixes (or names), else the first preferred.

    Raise ModelLoadError when there is none, or several and none of them is preferred.
    """
    found = sorted(
        p for p in folder.iterdir() if p.is_file() and (p.suffix in suffixes or p.name in names)
    )
    if len(found) == 1:
        return found[0]
    if not found:
        raise ModelLoadError(f"{folder}: no {or_list(names + suffixes)} file found")
    for name in preferred:
        if folder / name in found:
            return folder / name
    listed = ", ".join(p.name for p in found)
    raise ModelLoadError(
        f"{folder}: several model files ({listed}); keep one or name it {preferred[0]}"
    )


def thread_count(params: Mapping[str, Any], key: str, where: Path) -> int:
    """parameters[key] as a thread count (0, the default, leaves the choice to the library)."""
    value = params.get(key, 0)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ModelLoadError(
            f"{where}: parameters.{key} must be a non-negative integer, got {value!r}"
        )
    return value


def import_library(name: str, extra: str, file: Path) -> ModuleType:
    """Import a runtime's library, or raise ModelLoadError naming the pip extra to install."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ModelLoadError(
            f"{file}: {name} is not importable ({exc}); install it with: pip install 'pier[{extra}]'"
        ) from None


def batch_dim_first(*groups: Iterable[TensorSpec]) -> bool:
    """Whether dim 0 of every tensor given is the batch dimension (-1)."""
    return all(t.shape[:1] == (-1,) for group in groups for t in group)


def single_input(inputs: Mapping[str, Array], specs: Sequence[TensorSpec]) -> Array:
    """The feature matrix of a one-input model: the input of its name, or the only one sent."""
    name = specs[0].name if specs else "input"
    if name in inputs:
        return inputs[name]
    if len(inputs) == 1:
        return next(iter(inputs.values()))
    raise InvalidInput(f"expected one input named '{name}', got {', '.join(inputs) or 'none'}")


def one_value_per_row(values: Array, path: Path) -> Array:
    """Regression values, or Unsupported if the model predicts more than one per row."""
    if values.ndim != 1:
        raise Unsupported(f"model at {path} predicts {values.shape[1:]} values per row, not one")
    return values
