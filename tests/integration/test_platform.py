"""The platform end to end: a real `pier up`, the real `pier` CLI, real replicas, real load.

create from an EAS file → predict through the gateway → scale 1→3 and see every replica
serve → kill -9 a replica under load → update under load → restart the control plane →
delete; bad specs and bad API calls get clear 4xx. The steps share one `pier up` and run
in order.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from pier.serving.demo import write_demo_repository
from tests.integration.platform import Load, PierUp

PREDICT = {"instances": [1.0, 2.0, 5.0]}


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    write_demo_repository(root, names=["half_plus_two"])
    return root


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PierUp]:
    base = tmp_path_factory.mktemp("platform")
    server = PierUp(base / "home")
    yield server
    server.stop()


def describe(up: PierUp, name: str) -> dict[str, Any]:
    return up.cli_json("describe", name)  # type: ignore[no-any-return]


def wait_for(what: str, check: Any, up: PierUp, timeout: float = 90) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}\n--- pier up log ---\n{up.log()[-4000:]}")


def replica_requests(address: str) -> float:
    text = httpx.get(f"http://{address}/metrics", timeout=5).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("pier_inference_requests_total{")
    )


def test_create_from_an_eas_file_and_predict(up: PierUp, models: Path, tmp_path: Path) -> None:
    spec = {
        "name": "hpt",
        "model_path": str(models / "half_plus_two"),
        "processor": "onnx",
        "metadata": {"instance": 1, "cpu": 1, "gpu": 0, "memory": 8000},
    }
    path = tmp_path / "service.json"
    path.write_text(json.dumps(spec))
    done = up.cli("create", str(path))
    assert "hpt" in done.stdout + done.stderr

    out = up.cli("predict", "hpt", "--data", json.dumps(PREDICT))
    assert json.loads(out.stdout) == {"predictions": [2.5, 3.0, 4.5]}
    v2 = httpx.post(
        up.gateway + "/v2/models/hpt/infer",
        json={"inputs": [{"name": "x", "datatype": "FP32", "shape": [2], "data": [1.0, 3.0]}]},
    )
    assert v2.status_code == 200, v2.text
    assert v2.json()["outputs"][0]["data"] == [2.5, 3.5]

    doc = describe(up, "hpt")
    assert doc["status"] == "running"
    assert doc["revision"] == 1 and doc["replicas"] == 1 and doc["ready"] == 1
    assert doc["spec"]["resources"]["cpu"] == 1
    (replica,) = doc["replica_list"]
    assert replica["state"] == "ready" and replica["limits"]  # says how cpu/memory are enforced
    listing = up.cli("list").stdout
    assert "hpt" in listing


def _replicas(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return list(doc["replica_list"])


def test_scale_to_three_and_traffic_reaches_all(up: PierUp) -> None:
    up.cli("scale", "hpt", "3")
    doc = describe(up, "hpt")
    ready = [r for r in _replicas(doc) if r["state"] == "ready"]
    assert len(ready) == 3 and len({r["address"] for r in ready}) == 3
    before = {r["address"]: replica_requests(r["address"]) for r in ready}
    with httpx.Client() as client:
        for _ in range(90):
            assert (
                client.post(up.gateway + "/v1/models/hpt:predict", json=PREDICT).status_code == 200
            )
    served = {a: replica_requests(a) - n for a, n in before.items()}
    assert all(n > 0 for n in served.values()), served
    assert sum(served.values()) == 90


def test_kill_9_a_replica_under_load(up: PierUp) -> None:
    victim = _replicas(describe(up, "hpt"))[0]
    with Load(up.gateway + "/v1/models/hpt:predict", PREDICT) as load:
        time.sleep(0.5)
        os.kill(victim["pid"], signal.SIGKILL)

        def restarted() -> bool:
            doc = describe(up, "hpt")
            again = [r for r in _replicas(doc) if r["id"] == victim["id"]]
            return (
                bool(again)
                and again[0]["restarts"] >= 1
                and again[0]["state"] == "ready"
                and doc["ready"] == 3
            )

        wait_for("the killed replica to be restarted and ready", restarted, up)
        time.sleep(0.5)
    assert load.failures == [], load.failures[:5]
    assert load.ok > 50
    kinds = [e["kind"] for e in up.cli_json("events", "hpt")["events"]]
    assert "replica_exited" in kinds and "replica_restarted" in kinds


def test_update_under_load_fails_no_request(up: PierUp, models: Path, tmp_path: Path) -> None:
    path = tmp_path / "hpt.yaml"
    path.write_text(
        "name: hpt\n"
        f"model: {models / 'half_plus_two'}\n"
        "processor: onnx\n"
        "replicas: 3\n"
        "batching: {max_batch_size: 8, max_delay_ms: 1}\n"
    )
    with Load(up.gateway + "/v1/models/hpt:predict", PREDICT) as load:
        time.sleep(0.5)
        up.cli("update", "hpt", str(path))
        wait_for(
            "the old revision to drain",
            lambda: all(r["revision"] == 2 for r in _replicas(describe(up, "hpt"))),
            up,
        )
        time.sleep(0.5)
    assert load.failures == [], load.failures[:5]
    assert load.ok > 50
    doc = describe(up, "hpt")
    assert doc["revision"] == 2 and doc["ready"] == 3 and doc["status"] == "running"
    revisions = up.cli_json("revisions", "hpt")
    assert [r["revision"] for r in revisions["revisions"]] == [1, 2]
    events = up.cli_json("events", "hpt")["events"]
    kinds = [e["kind"] for e in events]
    assert "updated" in kinds and "rollout_complete" in kinds
    # The rollout is complete once revision 2 serves: tagged 2, after its last replica_ready.
    done = kinds.index("rollout_complete")
    assert events[done]["revision"] == 2
    last_ready = max(
        i for i, e in enumerate(events) if e["kind"] == "replica_ready" and e["revision"] == 2
    )
    assert last_ready < done


def test_control_plane_restart_keeps_services_and_replicas(up: PierUp) -> None:
    before = {r["id"]: r["pid"] for r in _replicas(describe(up, "hpt"))}
    up.kill()
    # the replicas outlive the control plane ...
    for pid in before.values():
        os.kill(pid, 0)
    # ... and one of them dies while no control plane watches
    lost_id, lost_pid = sorted(before.items())[0]
    os.kill(lost_pid, signal.SIGKILL)
    up.start()

    def converged() -> dict[str, Any] | None:
        d = describe(up, "hpt")
        return d if d["ready"] == 3 and len(_replicas(d)) == 3 else None

    doc = wait_for("the service to be running again", converged, up)
    after = {r["id"]: r["pid"] for r in _replicas(doc)}
    # the live ones were adopted (same pids), the dead one replaced
    kept = {k: v for k, v in before.items() if k != lost_id}
    assert {k: after.get(k) for k in kept} == kept
    assert after.get(lost_id) != lost_pid
    kinds = [e["kind"] for e in up.cli_json("events", "hpt")["events"]]
    assert "replica_adopted" in kinds
    r = httpx.post(up.gateway + "/v1/models/hpt:predict", json=PREDICT)
    assert r.status_code == 200 and r.json() == {"predictions": [2.5, 3.0, 4.5]}


def test_bad_specs_and_bad_calls_get_clear_4xx(up: PierUp, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "Bad Name", "model_path": "", "metadata": {"instance": -1}}))
    done = up.cli("create", str(bad), check=False)
    assert done.returncode == 2
    assert "name" in done.stderr and "metadata.instance" in done.stderr
    assert up.cli("describe", "nope", check=False).returncode == 3

    assert httpx.get(up.api + "/api/v1/services").status_code == 401
    r = up.api_call("POST", "/services/hpt/scale", json={"replicas": -1})
    assert r.status_code == 400 and "replicas" in r.json()["error"]
    r = up.api_call("POST", "/services", content=b"{not json")
    assert r.status_code == 400
    r = up.api_call("POST", "/services", json={"name": "hpt", "model": "/x"})
    assert r.status_code == 409
    assert httpx.post(up.gateway + "/v1/models/nope:predict", json=PREDICT).status_code == 404
    # the service is untouched by all of that
    assert describe(up, "hpt")["revision"] == 2


def test_a_missing_model_is_refused_at_create(up: PierUp, tmp_path: Path) -> None:
    path = tmp_path / "gone.json"
    path.write_text(json.dumps({"name": "gone", "model": str(tmp_path / "no-such-model")}))
    done = up.cli("create", str(path), check=False)
    assert done.returncode == 2, done.stderr
    assert "model: " in done.stderr and "no such file or folder" in done.stderr
    assert up.cli("describe", "gone", check=False).returncode == 3  # nothing stored


def test_a_model_that_cannot_load_fails_create_and_update_fast(
    up: PierUp, models: Path, tmp_path: Path
) -> None:
    version = tmp_path / "corrupt" / "1"
    version.mkdir(parents=True)
    (version / "model.onnx").write_bytes(b"this is not an onnx file")
    path = tmp_path / "corrupt.yaml"
    path.write_text(f"name: corrupt\nmodel: {version.parent}\nreplicas: 2\n")
    good = tmp_path / "good.yaml"
    good.write_text(f"name: corrupt\nmodel: {models / 'half_plus_two'}\nreplicas: 2\n")
    started = time.monotonic()
    done = up.cli("create", str(path), check=False, timeout=120)
    took = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    assert took < 30, f"create waited {took:.0f}s for a model that can never load"
    assert "revision 1 cannot start" in done.stderr and "model failed to load" in done.stderr
    assert "onnx" in done.stderr.lower() or "protobuf" in done.stderr.lower()
    # The healthy service was never disturbed.
    assert httpx.post(up.gateway + "/v1/models/hpt:predict", json=PREDICT).status_code == 200

    up.cli("update", "corrupt", str(good))  # fixed: revision 2 serves
    started = time.monotonic()
    done = up.cli("update", "corrupt", str(path), check=False, timeout=120)
    took = time.monotonic() - started
    assert done.returncode == 1, done.stderr
    assert took < 30, f"update waited {took:.0f}s for a model that can never load"
    assert "revision 3 cannot start" in done.stderr and "revision 2 keeps serving" in done.stderr
    assert httpx.post(up.gateway + "/v1/models/corrupt:predict", json=PREDICT).status_code == 200
    up.cli("delete", "corrupt", "-y")


def test_stop_counts_no_replica_ready(up: PierUp) -> None:
    up.cli("stop", "hpt")
    [listed] = [s for s in up.cli_json("list")["services"] if s["name"] == "hpt"]
    assert (listed["status"], listed["ready"], listed["replicas"]) == ("stopped", 0, 3)


def test_delete_stops_every_replica(up: PierUp) -> None:
    pids = [r["pid"] for r in _replicas(describe(up, "hpt")) if r["pid"]]
    up.cli("delete", "hpt", "-y")
    assert up.cli("describe", "hpt", check=False).returncode == 3
    # The history stays readable after the service is gone.
    kinds = [e["kind"] for e in up.cli_json("events", "hpt")["events"]]
    assert kinds[-1] == "deleted" and "stopped" in kinds
    assert up.cli("events", "never-was", check=False).returncode == 3

    def all_gone() -> bool:
        for pid in pids:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                continue
            return False
        return True

    wait_for("the replicas to exit", all_gone, up, timeout=60)
    r = httpx.post(up.gateway + "/v1/models/hpt:predict", json=PREDICT)
    assert r.status_code == 404
