"""gRPC against a real server with clients written by others: tritonclient and TF Serving stubs.

Both clients register protobuf messages named like Pier's own, so each runs in its own
process (tests/integration/clients/) and reports back as JSON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import builders as b
from tests.integration.server import PierServer

CLIENTS = Path(__file__).parent / "clients"


def run_client(script: str, *args: str, pythonpath: Path | None = None) -> dict[str, object]:
    env = os.environ.copy()
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    out = subprocess.run(
        [sys.executable, str(CLIENTS / script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, object] = json.loads(out.stdout)
    return result


def test_tritonclient_grpc_basics(server: PierServer) -> None:
    r = run_client("triton_grpc.py", server.grpc_target, "basics")
    assert r["live"] is True and r["ready"] is True
    assert r["model_ready"] is True and r["broken_ready"] is False
    assert r["server"]["name"] == "pier" and "statistics" in r["server"]["extensions"]
    assert r["metadata"]["inputs"] == [{"name": "x", "datatype": "FP32", "shape": ["-1"]}]
    assert r["config"]["max_batch_size"] == 8 and "dynamic_batching" in r["config"]
    assert r["y"] == [[4.0, 7.0, 10.0, 13.0]]
    assert r["length"] == [2, 2] and r["upper"] == ["HI!", "é!"]  # bytes.upper() leaves non-ASCII alone
    assert r["fp16"] == [[0.5, -2.0]] and r["uint64"] == [[1, 1]]
    (stat,) = r["stats"]["model_stats"]
    assert stat["name"] == "scaler" and int(stat["inference_stats"]["success"]["count"]) >= 1
    assert r["unknown_model"]["status"] == "StatusCode.NOT_FOUND"
    assert (
        r["bad_dtype"]["status"] == "StatusCode.INVALID_ARGUMENT"
        and "FP32" in r["bad_dtype"]["message"]
    )
    assert r["bad_version"]["status"] == "StatusCode.NOT_FOUND"


def test_tritonclient_grpc_stream(server: PierServer) -> None:
    r = run_client("triton_grpc.py", server.grpc_target, "stream")
    assert r["values"] == [[2.5], [3.0]]
    (error,) = r["errors"]
    assert "FP32" in error


def test_tritonclient_grpc_repository(tmp_path: Path) -> None:
    root = tmp_path / "models"
    b.onnx_add_mul(root / "m" / "1" / "model.onnx", 2.0)
    b.onnx_add_mul(root / "m" / "2" / "model.onnx", 3.0)
    srv = PierServer(root, tmp_path, "--model-control-mode", "explicit")
    try:
        srv.wait_ready()
        r = run_client("triton_grpc.py", srv.grpc_target, "repository")
    finally:
        srv.stop()
    assert {"name": "m", "state": "UNAVAILABLE", "reason": "not loaded"} in r["before"]["models"]
    assert r["y"] == [[4.0] * 4]
    assert r["after_unload"]["status"] == "StatusCode.NOT_FOUND"
    assert r["ghost"]["status"] == "StatusCode.NOT_FOUND"
    assert r["bad_config"]["status"] == "StatusCode.INVALID_ARGUMENT"
    assert r["stats_models"] == ["m"]


@pytest.fixture(scope="session")
def tfserving_stubs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Stubs generated from TF Serving's protocol definitions, in TF Serving's own layout."""
    from grpc_tools import protoc

    from pier.serving.protocols.grpc.generate import well_known_include, write_upstream_layout

    src = tmp_path_factory.mktemp("tfs-protos")
    out = tmp_path_factory.mktemp("tfs-stubs")
    write_upstream_layout(src)
    files = [str(p.relative_to(src)) for p in src.rglob("*.proto") if p.parts[-2] != "inference"]
    include = f"-I{well_known_include()}"
    args = [
        "protoc",
        f"-I{src}",
        include,
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        *files,
    ]
    assert protoc.main(args) == 0
    return out


def test_tfserving_grpc_stubs(server: PierServer, tfserving_stubs: Path) -> None:
    r = run_client("tfserving_grpc.py", server.grpc_target, pythonpath=tfserving_stubs)
    assert r["predict"] == [2.5, 3.0, 4.5]
    assert r["predict_dtype"] == 1 and r["predict_version"] == 1  # DT_FLOAT
    assert r["typed"] == [3.0, 5.0, 7.0, 9.0]
    assert r["label_version"] == 2
    assert (
        r["signature_inputs"] == {"x": 1} and r["signature_method"] == "tensorflow/serving/predict"
    )
    assert r["broken_state"] == 50 and "model.onnx" in r["broken_error"]  # END, with the reason
    assert r["scaler_versions"] == [[1, 30], [2, 30]]  # AVAILABLE
    labels = [label for label, _ in r["classify"]]
    assert labels == ["setosa", "versicolor", "virginica"]
    assert max(r["classify"], key=lambda c: c[1])[0] == "setosa"
    assert r["regress"] == [pytest.approx(4.0)]
    assert r["string_upper"] == ["AB!", "XYZ!"] and r["string_length"] == [2, 3]
    assert r["unknown_model"] == "NOT_FOUND"
    assert r["wrong_dtype"] == "INVALID_ARGUMENT"
