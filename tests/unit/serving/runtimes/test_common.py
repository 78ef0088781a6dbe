"""The helpers the runtimes share: picking the model file, thread counts, tensor checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pier.errors import InvalidInput, ModelLoadError, Unsupported
from pier.serving.runtimes._common import (
    batch_dim_first,
    find_model_file,
    import_library,
    one_value_per_row,
    or_list,
    single_input,
    thread_count,
)
from pier.serving.tensors import TensorSpec

SUFFIXES = (".ubj", ".bst")
PREFERRED = ("model.json", "model.ubj", "model.bst")


def _touch(folder: Path, *names: str) -> None:
    for name in names:
        (folder / name).write_bytes(b"")


def test_or_list() -> None:
    assert or_list([]) == ""
    assert or_list([".onnx"]) == ".onnx"
    assert or_list(["a", "b", "c"]) == "a, b or c"


def test_the_only_model_file_is_taken_whatever_its_name(tmp_path: Path) -> None:
    _touch(tmp_path, "trees.bst", "README.txt", "config.yaml")
    (tmp_path / "x.ubj").mkdir()
    assert find_model_file(tmp_path, SUFFIXES, PREFERRED) == tmp_path / "trees.bst"


def test_names_count_as_model_files(tmp_path: Path) -> None:
    _touch(tmp_path, "model.json")
    assert find_model_file(tmp_path, SUFFIXES, PREFERRED, names=("model.json",)).name == (
        "model.json"
    )


def test_no_model_file_lists_what_was_looked_for(tmp_path: Path) -> None:
    _touch(tmp_path, "model.json")
    with pytest.raises(ModelLoadError, match=r"no \.ubj or \.bst file found"):
        find_model_file(tmp_path, SUFFIXES, PREFERRED)
    with pytest.raises(ModelLoadError, match=r"no model\.txt or \.lgb file found"):
        find_model_file(tmp_path, (".lgb",), ("model.txt",), names=("model.txt",))


def test_several_model_files_take_the_first_preferred_name(tmp_path: Path) -> None:
    _touch(tmp_path, "a.ubj", "b.bst")
    with pytest.raises(
        ModelLoadError, match=r"several model files \(a\.ubj, b\.bst\); .* model\.json"
    ):
        find_model_file(tmp_path, SUFFIXES, PREFERRED)
    _touch(tmp_path, "model.bst")
    assert find_model_file(tmp_path, SUFFIXES, PREFERRED).name == "model.bst"
    _touch(tmp_path, "model.ubj")
    assert find_model_file(tmp_path, SUFFIXES, PREFERRED).name == "model.ubj"


@pytest.mark.parametrize("value", [-1, True, 1.5, "2"])
def test_thread_count_refuses_what_is_not_a_count(value: object) -> None:
    with pytest.raises(ModelLoadError, match=r"parameters\.nthread must be a non-negative integer"):
        thread_count({"nthread": value}, "nthread", Path("m/1"))


def test_thread_count_defaults_to_zero() -> None:
    assert thread_count({}, "nthread", Path("m/1")) == 0
    assert thread_count({"nthread": 4}, "nthread", Path("m/1")) == 4


def test_a_missing_library_names_the_extra() -> None:
    with pytest.raises(ModelLoadError, match=r"pip install 'pier\[demo\]'"):
        import_library("no_such_module_xyz", "demo", Path("m/1/model.bin"))


def test_batch_dim_first() -> None:
    batch = TensorSpec("x", "FP32", (-1, 3))
    fixed = TensorSpec("y", "FP32", (2, 3))
    assert batch_dim_first([batch], [batch])
    assert not batch_dim_first([batch], [fixed])
    assert batch_dim_first([])


def test_single_input() -> None:
    x = np.zeros((1, 2))
    specs = [TensorSpec("features", "FP64", (-1, 2))]
    assert single_input({"features": x, "other": x}, specs) is x
    assert single_input({"anything": x}, specs) is x
    with pytest.raises(InvalidInput, match="expected one input named 'features', got a, b"):
        single_input({"a": x, "b": x}, specs)
    with pytest.raises(InvalidInput, match="named 'input', got none"):
        single_input({}, [])


def test_one_value_per_row() -> None:
    values = np.zeros(3)
    assert one_value_per_row(values, Path("m/1")) is values
    with pytest.raises(Unsupported, match=r"predicts \(2,\) values per row"):
        one_value_per_row(np.zeros((3, 2)), Path("m/1"))
