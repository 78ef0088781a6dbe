"""Hot reload, version policy and load failures against a real polling server."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pier.serving import demo
from tests import builders as b
from tests.integration.server import PierServer, wait_for

ROW = {"instances": [[1.0, 1.0, 1.0, 1.0]]}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    b.onnx_add_mul(root / "m" / "1" / "model.onnx", 2.0)
    return root


@pytest.fixture
def server(repo: Path, tmp_path: Path) -> Iterator[PierServer]:
    srv = PierServer(repo, tmp_path, "--no-strict-readiness")
    srv.wait_ready()
    yield srv
    srv.stop()


def predict(srv: PierServer, model: str = "m", suffix: str = "") -> httpx.Response:
    return httpx.post(f"{srv.url}/v1/models/{model}{suffix}:predict", json=ROW, timeout=10)


def versions(srv: PierServer, model: str = "m") -> dict[str, str]:
    r = httpx.get(f"{srv.url}/v1/models/{model}")
    if r.status_code != 200:
        return {}
    return {s["version"]: s["state"] for s in r.json()["model_version_status"]}


def test_new_version_is_picked_up_and_old_one_unloaded(server: PierServer, repo: Path) -> None:
    assert predict(server).json() == {"predictions": [[3.0] * 4]}
    b.onnx_add_mul(repo / "m" / "2" / "model.onnx", 5.0)
    wait_for(lambda: versions(server) == {"2": "AVAILABLE"})
    assert predict(server).json() == {"predictions": [[6.0] * 4]}
    r = predict(server, suffix="/versions/1")
    assert r.status_code == 404
    # removing the newest version brings the previous one back (latest 1 of what is on disk)
    shutil.rmtree(repo / "m" / "2")
    wait_for(lambda: versions(server) == {"1": "AVAILABLE"})
    assert predict(server).json() == {"predictions": [[3.0] * 4]}
    assert "unloaded" in server.log()


def test_new_model_and_removed_model(server: PierServer, repo: Path) -> None:
    (repo / "hpt" / "1").mkdir(parents=True)
    (repo / "hpt" / "1" / "model.onnx").write_bytes(demo.half_plus_two_onnx())
    wait_for(lambda: versions(server, "hpt") == {"1": "AVAILABLE"})
    r = httpx.post(f"{server.url}/v1/models/hpt:predict", json={"instances": [2.0]})
    assert r.json() == {"predictions": [3.0]}
    shutil.rmtree(repo / "hpt")
    wait_for(lambda: httpx.get(f"{server.url}/v1/models/hpt").status_code == 404)


def test_corrupt_version_fails_alone_then_recovers(server: PierServer, repo: Path) -> None:
    (repo / "m" / "2").mkdir()
    (repo / "m" / "2" / "model.onnx").write_bytes(b"\x00garbage")
    wait_for(lambda: versions(server).get("2") == "END")
    # version 2 failed: the model has no available version under "latest 1"
    status = httpx.get(f"{server.url}/v1/models/m/versions/2").json()["model_version_status"][0]
    assert "model.onnx" in status["status"]["error_message"]
    assert httpx.get(f"{server.url}/v2/health/live").status_code == 200
    # fixing the files retries the load
    b.onnx_add_mul(repo / "m" / "2" / "model.onnx", 7.0)
    wait_for(lambda: versions(server).get("2") == "AVAILABLE")
    assert predict(server).json() == {"predictions": [[8.0] * 4]}


def test_config_change_reloads_with_new_policy(server: PierServer, repo: Path) -> None:
    b.onnx_add_mul(repo / "m" / "2" / "model.onnx", 5.0)
    wait_for(lambda: versions(server) == {"2": "AVAILABLE"})
    b.write_config(repo / "m", {"version_policy": {"all": True}, "version_labels": {"old": 1}})
    wait_for(lambda: versions(server) == {"1": "AVAILABLE", "2": "AVAILABLE"})
    assert predict(server, suffix="/labels/old").json() == {"predictions": [[3.0] * 4]}
    b.write_config(repo / "m", {"version_policy": {"latest": 1, "specific": [1]}})
    # an invalid config is reported and the served versions keep serving
    wait_for(lambda: "version_policy" in server.log())
    assert predict(server).status_code == 200


def test_explicit_mode_loads_only_what_is_asked(repo: Path, tmp_path: Path) -> None:
    (repo / "hpt" / "1").mkdir(parents=True)
    (repo / "hpt" / "1" / "model.onnx").write_bytes(demo.half_plus_two_onnx())
    srv = PierServer(repo, tmp_path, "--model-control-mode", "explicit", "--load-model", "hpt")
    try:
        srv.wait_ready()
        assert httpx.get(f"{srv.url}/v1/models/m").status_code == 404
        index = httpx.post(f"{srv.url}/v2/repository/index").json()
        assert {"name": "m", "state": "UNAVAILABLE", "reason": "not loaded"} in index
        assert httpx.post(f"{srv.url}/v2/repository/models/m/load").status_code == 200
        assert predict(srv).json() == {"predictions": [[3.0] * 4]}
        assert httpx.post(f"{srv.url}/v2/repository/models/m/unload").status_code == 200
        assert predict(srv).status_code == 404
        r = httpx.post(f"{srv.url}/v2/repository/models/ghost/load")
        assert r.status_code == 404 and "ghost" in r.json()["error"]
    finally:
        srv.stop()
