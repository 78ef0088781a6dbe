"""The model repository without a server: scans, policy, labels, failures, unload."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from pier.errors import InvalidInput, NotFound, Unavailable
from pier.observe.metrics import Metrics
from pier.serving.modelconfig import ModelConfig, VersionPolicy
from pier.serving.repository import ModelRepository
from pier.serving.sources import LocalSource
from pier.serving.status import VersionState
from tests import builders as b


def make_repo(root: Path, **kw: object) -> ModelRepository:
    return ModelRepository(root, ThreadPoolExecutor(2), Metrics(), **kw)  # type: ignore[arg-type]


async def predict(repo: ModelRepository, name: str, **kw: object) -> float:
    served = repo.resolve(name, **kw)  # type: ignore[arg-type]
    result = await served.run({"x": np.ones((1, 4), np.float32)})
    return float(result.outputs["y"][0, 0])


def test_local_source_lists_models_and_versions(tmp_path: Path) -> None:
    for name in ("1", "10", "2", "0", "abc", ".3"):
        (tmp_path / "m" / name).mkdir(parents=True)
    (tmp_path / "m" / "5").write_text("a file, not a folder")
    (tmp_path / ".hidden").mkdir()
    (tmp_path / "_tmp").mkdir()
    (tmp_path / "notes.txt").write_text("not a model")
    source = LocalSource(tmp_path)
    assert source.model_names() == ["m"]
    assert source.versions("m") == [1, 2, 10]
    assert source.versions("missing") == []
    assert source.config_stamp("m") == ()
    (tmp_path / "m" / "config.yaml").write_text("instances: 2\n")
    assert source.config_stamp("m")[0][0] == "config.yaml"
    assert source.load_config("m").instances == 2
    (tmp_path / "m" / "1" / "model.onnx").write_bytes(b"x")
    before = source.version_stamp("m", 1)
    (tmp_path / "m" / "1" / "model.onnx").write_bytes(b"xy")
    assert source.version_stamp("m", 1) != before
    assert source.materialize("m", 1) == tmp_path / "m" / "1"


def test_scan_policy_labels_and_unload(tmp_path: Path) -> None:
    for v in (1, 2, 3):
        b.onnx_add_mul(tmp_path / "m" / str(v) / "model.onnx", float(v))
    b.write_config(tmp_path / "m", {"version_policy": {"latest": 2}, "version_labels": {"stable": 2, "old": 1}})

    async def go() -> None:
        repo = make_repo(tmp_path)
        await repo.scan()
        assert [s.version for s in repo.statuses("m")] == [2, 3]
        assert await predict(repo, "m") == 4.0  # latest: 1 * 3 + 1
        assert await predict(repo, "m", version=2) == 3.0
        assert await predict(repo, "m", label="stable") == 3.0
        with pytest.raises(NotFound, match="version 1"):
            repo.resolve("m", version=1)  # on disk, not in the policy
        with pytest.raises(NotFound, match="'canary'"):
            repo.resolve("m", label="canary")
        with pytest.raises(NotFound, match="no version 1"):
            repo.resolve("m", label="old")  # label to a version that is not served
        with pytest.raises(NotFound, match="'x' is not found"):
            repo.resolve("x")
        old = repo.resolve("m", version=3)
        await repo.unload_model("m")
        with pytest.raises(NotFound):
            repo.resolve("m")
        assert getattr(old.runner.instances[0], "_session", "missing") is None  # memory released
        await repo.close()

    asyncio.run(go())


def test_failed_load_is_reported_and_isolated(tmp_path: Path) -> None:
    b.onnx_add_mul(tmp_path / "good" / "1" / "model.onnx")
    (tmp_path / "bad" / "1").mkdir(parents=True)
    (tmp_path / "bad" / "1" / "model.onnx").write_bytes(b"garbage")
    (tmp_path / "odd" / "1").mkdir(parents=True)
    (tmp_path / "odd" / "1" / "weights.bin").write_bytes(b"?")

    async def go() -> None:
        repo = make_repo(tmp_path)
        await repo.scan()
        (bad,) = repo.statuses("bad")
        assert bad.state is VersionState.FAILED and "model.onnx" in bad.reason
        (odd,) = repo.statuses("odd")
        assert "cannot tell the runtime" in odd.reason
        with pytest.raises(Unavailable, match="FAILED"):
            repo.resolve("bad")
        assert await predict(repo, "good") == 3.0
        assert not repo.all_ready()
        index = {(name, s.state.v2 if s else None) for name, s in repo.index()}
        assert ("bad", "UNAVAILABLE") in index and ("good", "READY") in index
        await repo.close()

    asyncio.run(go())


def test_explicit_mode_and_override(tmp_path: Path) -> None:
    for v in (1, 2):
        b.onnx_add_mul(tmp_path / "m" / str(v) / "model.onnx", float(v))

    async def go() -> None:
        repo = make_repo(tmp_path, control_mode="explicit")
        await repo.scan()
        assert repo.model_names() == []
        await repo.load_model("m", ModelConfig(version_policy=VersionPolicy(specific=[1])))
        assert [s.version for s in repo.statuses("m")] == [1]
        await repo.scan()  # an explicitly loaded model stays loaded across scans
        assert await predict(repo, "m") == 2.0
        with pytest.raises(NotFound, match="ghost"):
            await repo.load_model("ghost")
        await repo.close()

    asyncio.run(go())


def test_a_failed_reload_keeps_the_loaded_version_serving(tmp_path: Path) -> None:
    b.onnx_add_mul(tmp_path / "m" / "1" / "model.onnx", 2.0)

    async def go() -> None:
        repo = make_repo(tmp_path, control_mode="explicit")
        await repo.load_model("m")
        assert await predict(repo, "m") == 3.0
        with pytest.raises(InvalidInput, match="nope") as info:
            await repo.load_model("m", ModelConfig(runtime="nope"))
        assert "keep serving (version 1)" in info.value.message
        assert await predict(repo, "m") == 3.0
        assert [s.state for s in repo.statuses("m")] == [VersionState.AVAILABLE]
        await repo.scan()  # the old config stays in force; a scan does not retry the bad one
        assert await predict(repo, "m") == 3.0
        # A good override still replaces the config, and a plain load goes back to disk.
        await repo.load_model("m", ModelConfig(version_labels={"stable": 1}))
        assert await predict(repo, "m", label="stable") == 3.0
        await repo.load_model("m")
        with pytest.raises(NotFound, match="label"):
            repo.resolve("m", label="stable")
        assert await predict(repo, "m") == 3.0
        await repo.close()

    asyncio.run(go())


def test_version_folders_are_ascii_digits(tmp_path: Path) -> None:
    for name in ("1", "²", "\u0661"):
        (tmp_path / "m" / name).mkdir(parents=True)
    assert LocalSource(tmp_path).versions("m") == [1]
