"""A model repository in S3 (a real S3-compatible server process): push, serve, hot reload."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pier.serving import demo
from tests import builders as b
from tests.integration.s3server import S3Server
from tests.integration.server import PIER, PierServer, wait_for

ROW = {"instances": [[1.0, 1.0, 1.0, 1.0]]}


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with S3Server(tmp_path_factory.mktemp("s3")) as server:
        yield server


def pier(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*PIER, *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, **env},
    )


def versions(srv: PierServer, model: str) -> dict[str, str]:
    r = httpx.get(f"{srv.url}/v1/models/{model}")
    return (
        {s["version"]: s["state"] for s in r.json()["model_version_status"]}
        if r.status_code == 200
        else {}
    )


def test_push_serve_and_hot_reload_from_s3(s3: S3Server, tmp_path: Path) -> None:
    s3.create_bucket("models")
    local = tmp_path / "local"
    (local / "half_plus_two" / "1").mkdir(parents=True)
    (local / "half_plus_two" / "1" / "model.onnx").write_bytes(demo.half_plus_two_onnx())
    b.onnx_add_mul(local / "m" / "1" / "model.onnx", 2.0)
    b.write_config(local / "m", {"version_labels": {"first": 1}, "version_policy": {"all": True}})

    pushed = pier("models", "push", str(local), "s3://models/repo", "--no-progress", env=s3.env())
    assert pushed.returncode == 0, pushed.stderr
    assert "uploaded 3 file(s)" in pushed.stdout
    again = pier("models", "push", str(local), "s3://models/repo", "--no-progress", env=s3.env())
    assert "uploaded 0 file(s)" in again.stdout and "skipped 3" in again.stdout
    listed = pier("models", "ls", "s3://models/repo", env=s3.env())
    assert listed.returncode == 0 and "half_plus_two" in listed.stdout and "m" in listed.stdout

    cache = tmp_path / "cache"
    srv = PierServer("s3://models/repo", tmp_path, "--cache-dir", str(cache), env=s3.env())
    try:
        srv.wait_ready()
        r = httpx.post(
            f"{srv.url}/v1/models/half_plus_two:predict", json={"instances": [1.0, 2.0, 5.0]}
        )
        assert r.json() == {"predictions": [2.5, 3.0, 4.5]}
        assert httpx.post(f"{srv.url}/v1/models/m:predict", json=ROW).json() == {
            "predictions": [[3.0] * 4]
        }
        assert any(cache.iterdir())  # the versions came through the cache

        # a new version pushed to the bucket is picked up without a restart
        b.onnx_add_mul(local / "m" / "2" / "model.onnx", 5.0)
        assert (
            pier(
                "models", "push", str(local), "s3://models/repo", "--no-progress", env=s3.env()
            ).returncode
            == 0
        )
        wait_for(lambda: versions(srv, "m") == {"1": "AVAILABLE", "2": "AVAILABLE"})
        assert httpx.post(f"{srv.url}/v1/models/m:predict", json=ROW).json() == {
            "predictions": [[6.0] * 4]
        }
        assert httpx.post(f"{srv.url}/v1/models/m/labels/first:predict", json=ROW).json() == {
            "predictions": [[3.0] * 4]
        }

        # a version removed from the bucket is unloaded
        s3.client().delete_object(Bucket="models", Key="repo/m/1/model.onnx")
        wait_for(lambda: versions(srv, "m") == {"2": "AVAILABLE"})
        assert httpx.post(f"{srv.url}/v1/models/m/versions/1:predict", json=ROW).status_code == 404
    finally:
        srv.stop()
    assert "testing-secret-key" not in srv.log()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def test_unreachable_store_is_a_clear_error_without_secrets(tmp_path: Path) -> None:
    env = {
        "AWS_ENDPOINT_URL_S3": f"http://127.0.0.1:{_closed_port()}",
        "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE",
        "AWS_SECRET_ACCESS_KEY": "very-secret-value-123",
        "AWS_REGION": "us-east-1",
    }
    served = pier(
        "serve",
        "--model-repository",
        "s3://models/repo",
        "--http-port",
        "0",
        "--grpc-port",
        "0",
        "--log-format",
        "text",
        env=env,
    )
    assert served.returncode == 2
    assert "s3://models/repo" in served.stderr and "unreachable" in served.stderr
    listed = pier("models", "ls", "s3://models/repo", env=env)
    assert listed.returncode == 1 and "s3://models/repo" in listed.stderr
    for out in (served.stderr, served.stdout, listed.stderr, listed.stdout):
        assert "very-secret-value-123" not in out


def test_missing_bucket_and_unknown_scheme(s3: S3Server) -> None:
    missing = pier("models", "ls", "s3://no-such-bucket/x", env=s3.env())
    assert (
        missing.returncode == 1
        and "no-such-bucket" in missing.stderr
        and "not found" in missing.stderr
    )
    odd = pier("models", "ls", "ftp://host/x", env=s3.env())
    assert odd.returncode == 1 and "ftp" in odd.stderr


def test_one_model_from_s3_under_a_chosen_name(s3: S3Server, tmp_path: Path) -> None:
    """`pier serve --model NAME=s3://…`, as a replica of `pier up` runs: versions folder or one file."""
    s3.create_bucket("single")
    local = tmp_path / "hpt"
    (local / "1").mkdir(parents=True)
    (local / "1" / "model.onnx").write_bytes(demo.half_plus_two_onnx())
    assert (
        pier(
            "models", "push", str(local), "s3://single/hpt", "--no-progress", env=s3.env()
        ).returncode
        == 0
    )
    one_file = local / "1" / "model.onnx"
    assert (
        pier(
            "models",
            "push",
            str(one_file),
            "s3://single/file/model.onnx",
            "--no-progress",
            env=s3.env(),
        ).returncode
        == 0
    )
    config = tmp_path / "config.json"
    config.write_text('{"runtime": "onnx"}')

    for name, uri in (("svc", "s3://single/hpt"), ("onefile", "s3://single/file/model.onnx")):
        cache = tmp_path / f"cache-{name}"
        srv = PierServer(
            "",
            tmp_path,
            "--model",
            f"{name}={uri}",
            "--model-config",
            str(config),
            "--cache-dir",
            str(cache),
            env=s3.env(),
        )
        try:
            srv.wait_ready()
            r = httpx.post(
                f"{srv.url}/v1/models/{name}:predict", json={"instances": [1.0, 2.0, 5.0]}
            )
            assert r.json() == {"predictions": [2.5, 3.0, 4.5]}, srv.log()
            assert any(cache.iterdir())
        finally:
            srv.stop()
        assert "testing-secret-key" not in srv.log()
