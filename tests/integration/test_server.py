"""Process-level behaviour: workers, draining on SIGTERM, metrics, logs, limits, CLI."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest

from pier.serving import demo
from tests.integration.server import PIER, PierServer, wait_for

SLOW_MODEL = textwrap.dedent(
    """
    import time
    import numpy as np

    class Model:
        inputs = [{"name": "seconds", "datatype": "FP64", "shape": [1]}]
        outputs = [{"name": "slept", "datatype": "FP64", "shape": [1]}]

        def predict(self, inputs):
            time.sleep(float(inputs["seconds"][0]))
            return {"slept": inputs["seconds"]}
    """
)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    (root / "hpt" / "1").mkdir(parents=True)
    (root / "hpt" / "1" / "model.onnx").write_bytes(demo.half_plus_two_onnx())
    (root / "slow" / "1").mkdir(parents=True)
    (root / "slow" / "1" / "model.py").write_text(SLOW_MODEL)
    return root


def test_sigterm_drains_in_flight_requests(repo: Path, tmp_path: Path) -> None:
    srv = PierServer(repo, tmp_path)
    srv.wait_ready()
    result: dict[str, object] = {}

    def call() -> None:
        r = httpx.post(
            f"{srv.url}/v2/models/slow/infer",
            json={"inputs": [{"name": "seconds", "shape": [1], "datatype": "FP64", "data": [1.5]}]},
            timeout=30,
        )
        result["status"] = r.status_code
        result["body"] = r.json()

    t = threading.Thread(target=call)
    t.start()
    try:
        time.sleep(0.5)
        srv.proc.send_signal(signal.SIGTERM)
        t.join(30)
        assert result["status"] == 200, result
        assert srv.proc.wait(30) == 0
    finally:
        srv.stop()


def test_workers_share_one_port(repo: Path, tmp_path: Path) -> None:
    srv = PierServer(repo, tmp_path, "--workers", "2")
    try:
        srv.wait_ready()
        for _ in range(20):
            r = httpx.post(f"{srv.url}/v1/models/hpt:predict", json={"instances": [1.0]})
            assert r.json() == {"predictions": [2.5]}
        children = subprocess.run(
            ["pgrep", "-P", str(srv.proc.pid)], capture_output=True, text=True, check=False
        ).stdout.split()
        assert len(children) >= 2

        def total() -> float:
            metrics = httpx.get(srv.url + "/metrics").text
            return sum(
                float(line.split()[-1])
                for line in metrics.splitlines()
                if line.startswith("pier_inference_requests_total{") and 'model="hpt"' in line
            )

        # every worker's counts reach the one exposition (each flushes once a second)
        wait_for(lambda: total() == 20, timeout=10)
        time.sleep(1.5)
        assert total() == 20
    finally:
        assert srv.stop() == 0


def test_metrics_and_access_log(repo: Path, tmp_path: Path) -> None:
    srv = PierServer(repo, tmp_path)
    try:
        srv.wait_ready()
        httpx.post(f"{srv.url}/v1/models/hpt:predict", json={"instances": [1.0]})
        httpx.post(f"{srv.url}/v1/models/hpt:predict", content=b"nope")
        text = httpx.get(srv.url + "/metrics").text
        for family in (
            "pier_inference_requests_total",
            "pier_inference_failures_total",
            "pier_request_duration_seconds_bucket",
            "pier_queue_duration_seconds_bucket",
            "pier_compute_duration_seconds_bucket",
            "pier_batch_size_bucket",
            "pier_model_version_state",
            "pier_http_responses_total",
        ):
            assert family in text, family
        assert 'pier_model_version_state{model="hpt",state="AVAILABLE",version="1"} 1.0' in text
        assert 'code="invalid_argument"' in text
        time.sleep(0.5)  # access lines are flushed every 0.25 s
        lines = [orjson.loads(x) for x in srv.log().splitlines() if x.startswith("{")]
        access = [x for x in lines if x.get("type") == "access"]
        assert {(a["path"], a["status"]) for a in access} >= {
            ("/v1/models/hpt:predict", 200),
            ("/v1/models/hpt:predict", 400),
        }
        # the readiness probes of wait_ready() and the scrape above are not logged
        assert not [a for a in access if a["path"] in ("/v2/health/ready", "/metrics")]
    finally:
        srv.stop()


def test_no_access_log_and_body_limit(repo: Path, tmp_path: Path) -> None:
    srv = PierServer(repo, tmp_path, "--no-access-log", "--max-request-size", "1000")
    try:
        srv.wait_ready()
        r = httpx.post(f"{srv.url}/v1/models/hpt:predict", json={"instances": [1.0] * 1000})
        assert r.status_code == 413
        assert "1000" in r.json()["error"]
        assert (
            httpx.post(f"{srv.url}/v1/models/hpt:predict", json={"instances": [1.0]}).status_code
            == 200
        )
        time.sleep(0.5)
        assert '"type":"access"' not in srv.log()
    finally:
        srv.stop()


def test_strict_readiness_waits_for_every_model(repo: Path, tmp_path: Path) -> None:
    (repo / "broken" / "1").mkdir(parents=True)
    (repo / "broken" / "1" / "model.onnx").write_bytes(b"junk")
    srv = PierServer(repo, tmp_path)
    try:
        srv.wait_ready(path="/v2/health/live")
        time.sleep(1.0)
        r = httpx.get(srv.url + "/v2/health/ready")
        assert r.status_code == 503 and r.json() == {"ready": False}
        # the healthy model still serves
        assert (
            httpx.post(f"{srv.url}/v1/models/hpt:predict", json={"instances": [1.0]}).status_code
            == 200
        )
    finally:
        srv.stop()


def test_cli_version_help_and_bad_flags(tmp_path: Path) -> None:
    out = subprocess.run([*PIER, "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("pier ")
    for args in (["--help"], ["serve", "--help"], ["models", "demo", "--help"]):
        assert subprocess.run([*PIER, *args], capture_output=True, check=False).returncode == 0
    bad = subprocess.run(
        [*PIER, "serve", "--model-repository", str(tmp_path), "--workers", "0"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 2 and "--workers" in bad.stderr
    missing = subprocess.run(
        [*PIER, "serve", "--model-repository", str(tmp_path / "nope"), "--log-format", "text"],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )
    assert missing.returncode == 2 and "not a folder" in missing.stderr


def test_models_demo_command(tmp_path: Path) -> None:
    out = subprocess.run(
        [*PIER, "models", "demo", str(tmp_path / "demo")],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert "half_plus_two" in out.stdout
    assert (tmp_path / "demo" / "resnet50" / "1" / "model.onnx").stat().st_size > 90_000_000
    assert sys.executable
