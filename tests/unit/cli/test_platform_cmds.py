"""The platform commands against a real API server on 127.0.0.1 (uvicorn in a thread, SQLite store).

No controller runs here, so replicas appear only when a test writes them into the store.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from pier.client import PierClient, guess_protocol
from pier.control.records import ReplicaRecord, ReplicaState
from pier.control.store import Store
from pier.home import PierHome
from tests.replicas import observe
from tests.unit.cli.apiserver import TOKEN, ThreadServer, echo_gateway


@pytest.fixture
def eas_file(tmp_path: Path) -> Path:
    folder = tmp_path / "project"
    (folder / "model" / "1").mkdir(parents=True)
    path = folder / "service.json"
    spec = {
        "name": "mnist",
        "model_path": "./model",
        "processor": "onnx",
        "metadata": {"instance": 2, "cpu": 1, "memory": 1024},
    }
    path.write_text(json.dumps(spec))
    return path


def pier_file(tmp_path: Path, name: str = "iris", replicas: int = 1, **extra: Any) -> Path:
    path = tmp_path / f"{name}-{replicas}.yaml"
    lines = [
        f"name: {name}",
        "model: s3://bucket/iris",
        "processor: sklearn",
        f"replicas: {replicas}",
    ]
    lines += [f"{k}: {v}" for k, v in extra.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def ready(store: Store, service: str, id: str, revision: int = 1) -> None:
    observe(store, ReplicaRecord(id, service, revision, ReplicaState.READY, "127.0.0.1:1"))


# -- create ---------------------------------------------------------------------------------


def test_create_from_eas_file_resolves_local_paths(pier: Any, store: Store, eas_file: Path) -> None:
    result = pier("create", str(eas_file), "--no-wait")
    assert result.exit_code == 0, result.output
    assert "created service mnist (revision 1, 2 replica(s))" in result.stderr
    assert "/v2/models/mnist/infer" in result.stderr
    spec = store.get_revision("mnist", 1).spec
    assert spec["model"] == str((eas_file.parent / "model").resolve())
    assert spec["replicas"] == 2 and spec["processor"] == "onnx"


def test_create_invalid_spec_exits_2_listing_problems(
    pier: Any, store: Store, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"name": "Bad", "model": "ftp://x", "replicas": 100}))
    result = pier("create", str(bad), "--no-wait")
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines[0].startswith("error: invalid spec")
    assert any(line.startswith("  name: ") for line in lines)
    assert any(line.startswith("  model: ") for line in lines)
    assert any(line.startswith("  replicas: ") for line in lines)
    assert result.stdout == "" and store.list_services() == []


def test_create_malformed_file_exits_2(pier: Any, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"name": "x",')
    result = pier("create", str(bad), "--no-wait")
    assert result.exit_code == 2 and "invalid JSON" in result.stderr


def test_create_missing_file_is_a_usage_error(pier: Any, tmp_path: Path) -> None:
    assert pier("create", str(tmp_path / "nope.json")).exit_code == 2


def test_create_twice_fails_with_1(pier: Any, tmp_path: Path) -> None:
    spec = pier_file(tmp_path)
    assert pier("create", str(spec), "--no-wait").exit_code == 0
    result = pier("create", str(spec), "--no-wait")
    assert result.exit_code == 1 and "already exists" in result.stderr


def test_create_wait_times_out_with_the_reason(pier: Any, store: Store, tmp_path: Path) -> None:
    started = time.monotonic()
    result = pier("create", str(pier_file(tmp_path)), "--timeout", "0.5")
    assert result.exit_code == 1
    assert "ready 0/1  pending  revision 1" in result.stderr
    assert "not ready after 0.5s" in result.stderr and "no replica has started" in result.stderr
    assert time.monotonic() - started < 5
    assert store.get_service("iris").replicas == 1  # created all the same


def test_wait_succeeds_once_replicas_are_ready(pier: Any, store: Store, tmp_path: Path) -> None:
    pier("create", str(pier_file(tmp_path, replicas=2)), "--no-wait")
    ready(store, "iris", "r1")

    def second_turns_ready() -> None:
        time.sleep(0.3)
        ready(store, "iris", "r2")

    helper = threading.Thread(target=second_turns_ready)
    helper.start()
    result = pier("scale", "iris", "2", "--timeout", "10")
    helper.join()
    assert result.exit_code == 0, result.output
    assert "ready 1/2  scaling" in result.stderr
    assert "service iris is running: 2/2 ready" in result.stderr


def test_wait_stops_early_on_failed_replicas(pier: Any, store: Store, tmp_path: Path) -> None:
    pier("create", str(pier_file(tmp_path)), "--no-wait")
    observe(
        store,
        ReplicaRecord("r1", "iris", 1, ReplicaState.FAILED, reason="exit code 1: no model.onnx"),
    )
    started = time.monotonic()
    result = pier("scale", "iris", "1", "--timeout", "60")
    assert result.exit_code == 1
    assert "failed" in result.stderr and "no model.onnx" in result.stderr
    assert time.monotonic() - started < 10


# -- read -----------------------------------------------------------------------------------


def test_list_table_and_json(pier: Any, store: Store, tmp_path: Path) -> None:
    result = pier("list")
    assert result.exit_code == 0 and result.stdout == "" and "no services" in result.stderr
    pier("create", str(pier_file(tmp_path, replicas=2)), "--no-wait")
    pier("create", str(pier_file(tmp_path, name="alpha")), "--no-wait")
    ready(store, "iris", "r1")
    table = pier("list").stdout.splitlines()
    assert table[0].split() == ["NAME", "STATUS", "READY", "REVISION", "AGE"]
    assert table[1].split()[:4] == ["alpha", "pending", "0/1", "1"]
    assert table[2].split()[:4] == ["iris", "scaling", "1/2", "1"]
    assert table[1].index("pending") == table[2].index("scaling")  # aligned
    doc = json.loads(pier("list", "-o", "json").stdout)
    assert [s["name"] for s in doc["services"]] == ["alpha", "iris"]


def test_describe_table_and_json(pier: Any, store: Store, tmp_path: Path, api: str) -> None:
    pier("create", str(pier_file(tmp_path)), "--no-wait")
    ready(store, "iris", "iris-1-a")
    result = pier("describe", "iris")
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "Status:" in out and "running (1/1 ready)" in out
    assert "s3://bucket/iris" in out and "/v1/models/iris:predict" in out
    assert "iris-1-a" in out and "127.0.0.1:1" in out and "created" in out
    doc = json.loads(pier("describe", "iris", "-o", "json").stdout)
    with PierClient(api, TOKEN) as client:
        assert doc == client.get("iris")


def test_revisions_after_update(pier: Any, tmp_path: Path) -> None:
    pier("create", str(pier_file(tmp_path)), "--no-wait")
    result = pier("update", "iris", str(pier_file(tmp_path, replicas=3)), "--no-wait")
    assert result.exit_code == 0 and "updated service iris to revision 2" in result.stderr
    again = pier("update", "iris", str(pier_file(tmp_path, replicas=3)), "--no-wait")
    assert again.exit_code == 0 and "no change" in again.stderr
    table = pier("revisions", "iris").stdout.splitlines()
    assert table[0].split() == ["REVISION", "CREATED", "REPLICAS", "PROCESSOR", "MODEL"]
    assert table[1].split()[0] == "1" and table[2].split()[:2] == ["2", "*"]
    doc = json.loads(pier("revisions", "iris", "-o", "json").stdout)
    assert [r["revision"] for r in doc["revisions"]] == [1, 2]


def test_update_with_another_name_exits_2(pier: Any, store: Store, tmp_path: Path) -> None:
    pier("create", str(pier_file(tmp_path)), "--no-wait")
    result = pier("update", "iris", str(pier_file(tmp_path, name="other")), "--no-wait")
    assert result.exit_code == 2 and "'other', not 'iris'" in result.stderr
    assert len(store.list_revisions("iris")) == 1


def test_scale_stop_start_and_events(pier: Any, store: Store, tmp_path: Path) -> None:
    pier("create", str(pier_file(tmp_path)), "--no-wait")
    result = pier("scale", "iris", "3", "--no-wait")
    assert result.exit_code == 0 and "scaled service iris to 3" in result.stderr
    assert store.get_service("iris").replicas == 3
    assert pier("stop", "iris").exit_code == 0 and store.get_service("iris").stopped
    assert pier("scale", "iris", "2", "--timeout", "5").exit_code == 0  # stopped: nothing to wait
    assert pier("start", "iris", "--no-wait").exit_code == 0
    assert not store.get_service("iris").stopped
    table = pier("events", "iris").stdout.splitlines()
    assert table[0].split() == ["TIME", "KIND", "REVISION", "REPLICA", "MESSAGE"]
    kinds = [line.split()[2] for line in table[1:]]
    assert kinds == ["created", "scaled", "stopped", "scaled", "started"]
    doc = json.loads(pier("events", "iris", "--limit", "2", "-o", "json").stdout)
    assert [e["kind"] for e in doc["events"]] == ["scaled", "started"]


def test_start_waits_like_create_update_and_scale(
    pier: Any, store: Store, tmp_path: Path
) -> None:
    pier("create", str(pier_file(tmp_path)), "--no-wait")
    assert pier("stop", "iris").exit_code == 0
    started = time.monotonic()
    result = pier("start", "iris", "--timeout", "0.5")  # nothing runs replicas here
    assert result.exit_code == 1, result.output
    assert "started service iris (1 replica(s))" in result.stderr
    assert "ready 0/1  pending  revision 1" in result.stderr
    assert "not ready after 0.5s" in result.stderr
    assert time.monotonic() - started < 5
    ready(store, "iris", "r1")
    assert pier("stop", "iris").exit_code == 0
    result = pier("start", "iris", "--timeout", "10")
    assert result.exit_code == 0, result.output
    assert "service iris is running: 1/1 ready" in result.stderr


@pytest.mark.parametrize("count", ["-1", "65", "two"])
def test_scale_out_of_range_is_a_usage_error(pier: Any, count: str) -> None:
    assert pier("scale", "iris", count).exit_code == 2


def test_delete(pier: Any, store: Store, tmp_path: Path) -> None:
    pier("create", str(pier_file(tmp_path)), "--no-wait")
    refused = pier("delete", "iris", input="n\n")
    assert refused.exit_code == 1 and store.list_services() != []
    result = pier("delete", "iris", input="y\n")
    assert result.exit_code == 0 and "deleted service iris" in result.stderr
    pier("create", str(pier_file(tmp_path)), "--no-wait")
    assert pier("delete", "iris", "-y").exit_code == 0 and store.list_services() == []


def test_logs(pier: Any, store: Store, tmp_path: Path) -> None:
    pier("create", str(pier_file(tmp_path)), "--no-wait")
    ready(store, "iris", "r1")
    assert pier("logs", "iris").stdout == "iris all line 1\niris line 2\n"
    assert pier("logs", "iris", "--replica", "r1", "-f").stdout.startswith("iris r1 line 1\n")
    missing = pier("logs", "iris", "--replica", "ghost")
    assert missing.exit_code == 3 and "ghost" in missing.stderr


def test_predict_goes_through_the_gateway(pier: Any, tmp_path: Path) -> None:
    v2 = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}]}
    result = pier("predict", "iris", "--data", json.dumps(v2))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"path": "/v2/models/iris/infer", "body": v2}
    body_file = tmp_path / "req.json"
    body_file.write_text(json.dumps({"instances": [[1.0, 2.0]]}))
    answer = json.loads(pier("predict", "iris", "--data", f"@{body_file}").stdout)
    assert answer["path"] == "/v1/models/iris:predict"
    forced = json.loads(pier("predict", "iris", "--data", "{}", "--protocol", "v2").stdout)
    assert forced["path"] == "/v2/models/iris/infer"


@pytest.mark.parametrize("data", ["{oops", "[1]", "@/nonexistent/body.json"])
def test_predict_bad_data_is_a_usage_error(pier: Any, data: str) -> None:
    result = pier("predict", "iris", "--data", data)
    assert result.exit_code == 2 and "--data" in result.stderr


def test_guess_protocol() -> None:
    assert guess_protocol({"inputs": [{"name": "a", "datatype": "FP32"}]}) == "v2"
    assert guess_protocol({"inputs": {"a": [1]}}) == "tfserving"
    assert guess_protocol({"instances": [1]}) == "tfserving"


# -- exit codes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["describe", "nope"],
        ["scale", "nope", "2"],
        ["stop", "nope"],
        ["start", "nope"],
        ["delete", "nope", "-y"],
        ["events", "nope"],
        ["revisions", "nope"],
        ["logs", "nope"],
    ],
)
def test_not_found_exits_3(pier: Any, args: list[str]) -> None:
    result = pier(*args)
    assert result.exit_code == 3 and "nope" in result.stderr and result.stdout == ""


def test_unreachable_api_exits_4(pier: Any) -> None:
    with ThreadServer(echo_gateway) as url:
        pass  # a port nothing listens on any more
    result = CliRunner().invoke(pier.group, ["list", "--api", url, "--token", TOKEN])
    assert result.exit_code == 4
    assert url in result.stderr and "pier up" in result.stderr


def test_wrong_token_exits_4(pier: Any, api: str) -> None:
    result = CliRunner().invoke(pier.group, ["list", "--api", api, "--token", "wrong"])
    assert result.exit_code == 4 and "wrong admin token" in result.stderr


def test_no_running_control_plane_exits_4(pier: Any, tmp_path: Path) -> None:
    result = pier("list", "--home", str(tmp_path / "empty"), connect=False)
    assert result.exit_code == 4 and "pier up" in result.stderr


def test_home_folder_and_environment_find_the_api(pier: Any, api: str, tmp_path: Path) -> None:
    home = PierHome(tmp_path / "home")
    home.ensure()
    home.token_path.write_text(TOKEN + "\n")
    home.write_address(api, "http://127.0.0.1:1")
    assert pier("list", "--home", str(home.root), connect=False).exit_code == 0
    by_env = CliRunner().invoke(
        pier.group, ["list"], env={"PIER_API": api, "PIER_TOKEN": TOKEN, "PIER_HOME": None}
    )
    assert by_env.exit_code == 0, by_env.output
    via_sdk = PierClient.from_env(home.root)
    try:
        assert via_sdk.list() == []
    finally:
        via_sdk.close()
