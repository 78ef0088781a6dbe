"""Per-model config files: parsing, validation messages, version policy."""

from __future__ import annotations

from pathlib import Path

import pytest

from pier.errors import ConfigError
from pier.serving.modelconfig import ModelConfig, VersionPolicy, load_config, parse_config


def test_defaults_when_there_is_no_file(tmp_path: Path) -> None:
    cfg = load_config(tmp_path)
    assert cfg == ModelConfig()
    assert cfg.version_policy.select([3, 1, 2]) == [3]
    assert cfg.dynamic_batching is None and cfg.instances == 1


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        ({}, [5]),
        ({"latest": 2}, [3, 5]),
        ({"specific": [1, 3, 9]}, [1, 3]),
        ({"all": True}, [1, 2, 3, 5]),
    ],
)
def test_version_policy(policy: dict[str, object], expected: list[int]) -> None:
    assert VersionPolicy.model_validate(policy).select([5, 1, 3, 2]) == expected


def test_yaml_and_json_files(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(
        "runtime: onnx\n"
        "version_labels: {stable: 1}\n"
        "dynamic_batching: {max_batch_size: 8, max_queue_delay_microseconds: 500, preferred_batch_size: [4, 8]}\n"
        "inputs: [{name: x, datatype: TYPE_FP32, shape: [-1, 3]}]\n"
    )
    cfg = load_config(tmp_path)
    assert cfg.runtime == "onnx" and cfg.version_labels == {"stable": 1}
    assert cfg.dynamic_batching is not None
    assert cfg.dynamic_batching.max_queue_delay_ms == 0.5
    assert cfg.dynamic_batching.preferred_batch_sizes == [4, 8]
    assert cfg.inputs is not None and cfg.inputs[0].datatype == "FP32"
    (tmp_path / "config.yaml").unlink()
    (tmp_path / "config.json").write_text('{"instances": 3, "execution": "thread"}')
    assert load_config(tmp_path).instances == 3


@pytest.mark.parametrize(
    ("data", "fragments"),
    [
        ({"runtim": "onnx"}, ["runtim", "Extra inputs"]),
        ({"version_policy": {"latest": 1, "all": True}}, ["version_policy", "only one"]),
        ({"version_policy": {"latest": 0}}, ["version_policy.latest"]),
        ({"version_labels": {"stable": 0}}, ["stable", "positive"]),
        ({"version_labels": {"7": 1}}, ["non-numeric"]),
        ({"inputs": [{"name": "x", "datatype": "FLOAT", "shape": [1]}]}, ["inputs.0.datatype", "FLOAT"]),
        ({"inputs": [{"name": "x", "datatype": "FP32", "shape": [0]}]}, ["inputs.0.shape"]),
        ({"dynamic_batching": {"max_batch_size": 4, "preferred_batch_sizes": [8]}}, ["preferred_batch_sizes"]),
        ({"instances": 0}, ["instances"]),
        ({"execution": "gpu"}, ["execution"]),
    ],
)
def test_invalid_configs_name_the_field(data: dict[str, object], fragments: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(data, "models/m/config.yaml")
    message = info.value.message
    assert message.startswith("models/m/config.yaml: ")
    for fragment in fragments:
        assert fragment in message


def test_unparseable_file(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("runtime: [unclosed\n")
    with pytest.raises(ConfigError, match=r"config\.yaml: cannot be parsed"):
        load_config(tmp_path)
    (tmp_path / "config.yaml").write_text("- a list\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(tmp_path)
