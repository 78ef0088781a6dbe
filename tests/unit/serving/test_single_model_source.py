"""One model under a chosen name from one URI: versions folder, flat folder, single file."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from pier.errors import ConfigError, StorageNotFound
from pier.observe.metrics import Metrics
from pier.serving.modelconfig import ModelConfig, parse_config
from pier.serving.repository import ModelRepository
from pier.serving.single_model_source import (
    SingleModelSource,
    merge_config,
    parse_model_option,
    read_override,
)
from pier.storage import StorageOptions
from tests import builders as b

LOCAL = StorageOptions()  # local paths: no store to reach


def serve_one(source: SingleModelSource) -> float:
    async def go() -> float:
        repo = ModelRepository(source, ThreadPoolExecutor(2), Metrics())  # type: ignore[arg-type]
        await repo.scan()
        try:
            result = await repo.resolve("svc").run({"x": np.ones((1, 4), np.float32)})
            return float(result.outputs["y"][0, 0])
        finally:
            await repo.close()

    return asyncio.run(go())


def test_versions_folder_is_served_under_the_given_name(tmp_path: Path) -> None:
    for v in (1, 2):
        b.onnx_add_mul(tmp_path / "resnet" / str(v) / "model.onnx", float(v))
    source = SingleModelSource("svc", str(tmp_path / "resnet"), tmp_path / "cache", 10**9, LOCAL)
    assert source.model_names() == ["svc"]
    assert source.versions("svc") == [1, 2]
    assert serve_one(source) == 3.0  # latest version: x * 2 + 1


def test_flat_folder_and_single_file_are_version_one(tmp_path: Path) -> None:
    b.onnx_add_mul(tmp_path / "flat" / "model.onnx", 3.0)
    flat = SingleModelSource("svc", str(tmp_path / "flat"), tmp_path / "cache", 10**9, LOCAL)
    assert flat.versions("svc") == [1]
    assert serve_one(flat) == 4.0

    one = SingleModelSource(
        "svc", str(tmp_path / "flat" / "model.onnx"), tmp_path / "c", 10**9, LOCAL
    )
    assert one.versions("svc") == [1]
    folder = one.materialize("svc", 1)
    assert [p.name for p in folder.iterdir()] == ["model.onnx"]
    assert serve_one(one) == 4.0
    before = one.version_stamp("svc", 1)
    b.onnx_add_mul(tmp_path / "flat" / "model.onnx", 5.0)
    assert one.version_stamp("svc", 1) != before


def test_override_lays_over_the_models_own_config(tmp_path: Path) -> None:
    b.onnx_add_mul(tmp_path / "m" / "1" / "model.onnx")
    b.write_config(tmp_path / "m", {"instances": 2, "parameters": {"a": 1, "b": 2}})
    (tmp_path / "o.json").write_text('{"runtime": "onnx", "parameters": {"b": 3}}')
    override = read_override(tmp_path / "o.json")
    source = SingleModelSource("svc", str(tmp_path / "m"), tmp_path / "c", 10**9, LOCAL, override)
    config = source.load_config("svc")
    assert config.runtime == "onnx"
    assert config.instances == 2  # not in the override: the model's own value stays
    assert config.parameters == {"a": 1, "b": 3}
    assert merge_config(ModelConfig(instances=3), None).instances == 3
    assert merge_config(ModelConfig(), parse_config({}, "x")) == ModelConfig()


def test_bad_options_and_missing_models_say_what_is_wrong(tmp_path: Path) -> None:
    assert parse_model_option("iris=./models/iris") == ("iris", "./models/iris")
    for bad in ("iris", "=x", "iris=", ".x=y", "a/b=y"):
        with pytest.raises(ConfigError, match="--model"):
            parse_model_option(bad)
    with pytest.raises(ConfigError, match="cannot be read"):
        read_override(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text('{"instances": 0}')
    with pytest.raises(ConfigError, match="instances"):
        read_override(tmp_path / "bad.json")
    missing = SingleModelSource("svc", str(tmp_path / "nope"), tmp_path / "c", 10**9, LOCAL)
    assert missing.versions("svc") == []
    with pytest.raises(StorageNotFound):
        missing.check()
    (tmp_path / "empty").mkdir()
    with pytest.raises(StorageNotFound, match="no model files"):
        SingleModelSource("svc", str(tmp_path / "empty"), tmp_path / "c", 10**9, LOCAL).check()


def test_the_entry_points_storage_options_reach_the_source(tmp_path: Path) -> None:
    from pier.config import ServerSettings
    from pier.serving.server import source_of
    from pier.serving.sources import RemoteSource

    options = StorageOptions(endpoint_url="http://127.0.0.1:9", anon=True)
    settings = ServerSettings(model_repository="s3://bucket/models", cache_dir=tmp_path)
    source = source_of(settings, options)
    assert isinstance(source, RemoteSource) and source.options is options
    one = ServerSettings(model="svc=s3://bucket/m", cache_dir=tmp_path)
    single = source_of(one, options)
    assert isinstance(single, SingleModelSource) and single.description == "svc=s3://bucket/m"
