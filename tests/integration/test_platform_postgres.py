"""`pier up --store postgresql://…`: the platform keeps its state in a real PostgreSQL server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pier.serving.demo import write_demo_repository
from tests.integration.platform import PierUp
from tests.postgres import PostgresServer, postgres_missing


@pytest.fixture(scope="module")
def database() -> Iterator[str]:
    missing = postgres_missing()
    if missing:
        pytest.skip(missing)
    server = PostgresServer.start()
    try:
        yield server.create_database()
    finally:
        server.stop()


def test_services_live_in_postgresql_across_restarts(database: str, tmp_path: Path) -> None:
    write_demo_repository(tmp_path / "models", names=["half_plus_two"])
    spec = tmp_path / "hpt.json"
    spec.write_text(json.dumps({"name": "hpt", "model": str(tmp_path / "models" / "half_plus_two")}))
    up = PierUp(tmp_path / "home", "--store", database)
    try:
        info = up.api_call("GET", "/info").json()
        assert info["store"] == "postgresql"
        assert "password" not in json.dumps(info)
        up.cli("create", str(spec))
        up.cli("update", "hpt", str(spec), "--no-wait")  # unchanged: no new revision
        assert up.stop() == 0  # a clean stop: replicas stopped, state stays in PostgreSQL

        # A new control plane with a fresh home folder: everything comes from the database.
        up = PierUp(tmp_path / "home2", "--store", database)
        doc = up.cli_json("describe", "hpt")
        assert doc["revision"] == 1
        up.cli("scale", "hpt", "1")  # waits until the replica is ready again
        r = httpx.post(up.gateway + "/v1/models/hpt:predict", json={"instances": [2.0]})
        assert r.json() == {"predictions": [3.0]}
        kinds = [e["kind"] for e in up.cli_json("events", "hpt")["events"]]
        assert kinds[0] == "created" and kinds.count("replica_started") == 2
        assert "replica_stopped" in kinds  # written by the first control plane as it stopped
    finally:
        up.stop()
