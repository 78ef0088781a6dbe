"""The management API at its edges: numbers past int64, a 500 on a keep-alive connection,
events that outlive their service, suggestions for unknown names, and local model checks."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient

from pier.control.api import create_api
from pier.control.records import ReplicaRecord, ReplicaState
from pier.control.store import Store
from pier.serving.demo import write_demo_repository
from pier.serving.precheck import spec_problems
from tests.replicas import observe

TOKEN = "edge-token"
GATEWAY = "http://127.0.0.1:8080"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PAST_INT64 = 2**63


class Hooks:
    """ControlHooks that can be told to fail on wake (the controller's hook, not a store)."""

    def __init__(self) -> None:
        self.fail = False

    def wake(self) -> None:
        if self.fail:
            raise RuntimeError("the controller is gone")

    async def logs(
        self, service: str, replica: str | None, tail: int, follow: bool
    ) -> AsyncIterator[str]:
        for line in ("one", "two"):
            yield line


@pytest.fixture
def hooks() -> Hooks:
    return Hooks()


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    write_demo_repository(root, names=["half_plus_two"])
    return root


@pytest.fixture
def client(store: Store, hooks: Hooks) -> Iterator[TestClient]:
    app = create_api(store, hooks, TOKEN, gateway_url=GATEWAY, check_model=spec_problems)
    with TestClient(app, headers=AUTH, raise_server_exceptions=False) as c:
        yield c


def create(client: TestClient, models: Path, name: str = "iris") -> None:
    spec = {"name": name, "model": str(models / "half_plus_two"), "processor": "onnx"}
    response = client.post("/api/v1/services", json=spec)
    assert response.status_code == 201, response.text


# -- integers past int64 ----------------------------------------------------------------------


def test_numbers_past_int64_are_4xx_not_500(client: TestClient, models: Path) -> None:
    create(client, models)
    r = client.get(f"/api/v1/services/iris/revisions/{PAST_INT64}")
    assert r.status_code == 404, r.text
    assert r.json()["error"] == (
        f"service 'iris' has no revision {PAST_INT64}; its revisions are 1 to 1"
    )
    r = client.get(f"/api/v1/services/iris/events?after={PAST_INT64}")
    assert r.status_code == 400, r.text
    assert "after (query)" in r.json()["error"]
    for query in (f"limit={PAST_INT64}", f"after=-{PAST_INT64}"):
        assert client.get(f"/api/v1/services/iris/events?{query}").status_code == 400
    assert client.get(f"/api/v1/services/iris/logs?tail={PAST_INT64}").status_code == 400
    r = client.post("/api/v1/services/iris/scale", json={"replicas": PAST_INT64})
    assert r.status_code == 400 and "replicas" in r.json()["error"]
    r = client.get("/api/v1/services/iris/revisions/" + "9" * 5000)
    assert r.status_code == 400
    # Still answering, and the last event id is still the one to page from.
    events = client.get("/api/v1/services/iris/events?after=9223372036854775807").json()
    assert events == {"events": []}


def test_the_store_refuses_numbers_past_int64_itself(store: Store) -> None:
    store.create_service("iris", {"name": "iris"}, 1)
    assert store.list_events("iris", 10, PAST_INT64) == []
    with pytest.raises(Exception, match="has no revision"):
        store.get_revision("iris", PAST_INT64)
    with pytest.raises(Exception, match="replicas must be a whole number"):
        store.set_replicas("iris", PAST_INT64)


# -- a 500 on a keep-alive connection ---------------------------------------------------------


class ThreadServer:
    """The API served by uvicorn on a free 127.0.0.1 port, in a background thread."""

    def __init__(self, app: Any) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="critical")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="api-edges", daemon=True)

    def __enter__(self) -> int:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "no server"
            time.sleep(0.01)
        port: int = self.server.servers[0].sockets[0].getsockname()[1]
        return port

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


def _request(sock: socket.socket, method: str, path: str, body: bytes = b"") -> None:
    head = (
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    sock.sendall(head.encode() + body)


def _response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed mid-response: {data!r}"
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    size = int(headers["content-length"])
    while len(rest) < size:
        chunk = sock.recv(65536)
        assert chunk
        rest += chunk
    return int(lines[0].split()[1]), headers, rest[:size]


def test_an_unexpected_500_says_connection_close_and_the_next_connection_works(
    store: Store, hooks: Hooks, models: Path
) -> None:
    app = create_api(store, hooks, TOKEN, gateway_url=GATEWAY)
    hooks.fail = True
    spec = json.dumps({"name": "iris", "model": str(models / "half_plus_two")}).encode()
    with ThreadServer(app) as port:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            _request(sock, "POST", "/api/v1/services", spec)
            status, headers, body = _response(sock)
            assert status == 500
            assert json.loads(body)["code"] == "internal"
            # The server drops this connection after a 500: it must say so.
            assert headers.get("connection") == "close"
            assert sock.recv(1) == b""
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            _request(sock, "GET", "/api/v1/services/iris")
            status, headers, body = _response(sock)
            assert status == 200 and json.loads(body)["name"] == "iris"
            _request(sock, "GET", "/api/v1/health")  # keep-alive: same connection again
            assert _response(sock)[0] == 200


# -- events outlive their service --------------------------------------------------------------


def test_events_of_a_deleted_service_stay_readable(client: TestClient, models: Path) -> None:
    create(client, models)
    assert client.delete("/api/v1/services/iris").status_code == 200
    assert client.get("/api/v1/services/iris").status_code == 404
    r = client.get("/api/v1/services/iris/events")
    assert r.status_code == 200, r.text
    assert [e["kind"] for e in r.json()["events"]] == ["created", "deleted"]
    r = client.get("/api/v1/services/never/events")
    assert r.status_code == 404 and "never" in r.json()["error"]


# -- did you mean ------------------------------------------------------------------------------


def test_an_unknown_service_suggests_the_closest_one(client: TestClient, models: Path) -> None:
    create(client, models, "resnet")
    create(client, models, "iris")
    for path in ("/api/v1/services/resnte", "/api/v1/services/resnte/scale"):
        method = "GET" if path.endswith("resnte") else "POST"
        r = client.request(method, path, json={"replicas": 1})
        assert r.status_code == 404
        assert r.json()["error"] == "service 'resnte' not found; did you mean 'resnet'?"
    r = client.get("/api/v1/services/zzzz")
    assert r.json()["error"] == (
        "service 'zzzz' not found; `pier list` shows the services there are"
    )


def test_an_unknown_spec_field_suggests_the_closest_one(client: TestClient, models: Path) -> None:
    spec = {"name": "iris", "model": str(models / "half_plus_two"), "replcias": 2}
    r = client.post("/api/v1/services", json=spec)
    assert r.status_code == 400
    assert r.json()["problems"] == [
        {"path": "replcias", "message": "unknown field 'replcias'; did you mean 'replicas'?"}
    ]


# -- local models are checked at create and update --------------------------------------------


def test_a_missing_local_model_is_a_400_at_model(client: TestClient, tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    r = client.post("/api/v1/services", json={"name": "iris", "model": str(missing)})
    assert r.status_code == 400, r.text
    [problem] = r.json()["problems"]
    assert problem["path"] == "model" and "no such file or folder" in problem["message"]
    assert client.get("/api/v1/services").json() == {"services": []}
    eas = {"name": "iris", "model_path": str(missing), "processor": "onnx"}
    r = client.post("/api/v1/services", json=eas)
    assert r.status_code == 400 and r.json()["problems"][0]["path"] == "model_path"


@pytest.mark.parametrize(
    ("files", "processor", "fragment"),
    [
        ({}, None, "holds no model files"),
        ({"config.yaml": "runtime: onnx\n"}, "onnx", "holds no model files"),
        ({"1/weights.bin": "x"}, None, "cannot tell the runtime"),
        ({"notes.txt": "x"}, None, "cannot tell the runtime"),
    ],
)
def test_a_folder_without_a_usable_model_is_a_400(
    client: TestClient, tmp_path: Path, files: dict[str, str], processor: str | None, fragment: str
) -> None:
    folder = tmp_path / "m"
    folder.mkdir()
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    spec = {"name": "iris", "model": str(folder), "processor": processor}
    r = client.post("/api/v1/services", json=spec)
    assert r.status_code == 400, r.text
    [problem] = r.json()["problems"]
    assert problem["path"] == "model" and fragment in problem["message"], problem


def test_what_a_replica_could_serve_is_accepted(
    client: TestClient, models: Path, tmp_path: Path
) -> None:
    weights = tmp_path / "odd" / "1"
    weights.mkdir(parents=True)
    (weights / "weights.bin").write_text("x")  # unknown files, but the processor is given
    single = tmp_path / "model.onnx"
    single.write_bytes((models / "half_plus_two" / "1" / "model.onnx").read_bytes())
    for name, model, processor in [
        ("a", str(models / "half_plus_two"), None),
        ("b", str(weights.parent), "onnx"),
        ("c", str(single), None),
        ("d", f"file://{models / 'half_plus_two'}", None),
        ("e", "s3://bucket/not/checked/here", None),  # remote: the replica reports
    ]:
        r = client.post(
            "/api/v1/services", json={"name": name, "model": model, "processor": processor}
        )
        assert r.status_code == 201, (name, r.text)


def test_update_checks_the_model_too(client: TestClient, models: Path, tmp_path: Path) -> None:
    create(client, models)
    r = client.put("/api/v1/services/iris", json={"name": "iris", "model": str(tmp_path / "x")})
    assert r.status_code == 400 and r.json()["problems"][0]["path"] == "model"
    assert client.get("/api/v1/services/iris").json()["revision"] == 1


def test_missing_python_code_is_a_400_at_its_path(client: TestClient, models: Path) -> None:
    spec = {
        "name": "iris",
        "model": str(models / "half_plus_two"),
        "processor": "python",
        "code": {"path": "/no/such/code"},
    }
    r = client.post("/api/v1/services", json=spec)
    assert r.status_code == 400
    assert [p["path"] for p in r.json()["problems"]] == ["code.path"]


def test_a_taken_name_is_a_409_whatever_the_model(client: TestClient, models: Path) -> None:
    create(client, models)
    r = client.post("/api/v1/services", json={"name": "iris", "model": "/no/such/model"})
    assert r.status_code == 409, r.text


def _deep(depth: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(depth):
        node["x"] = {}
        node = node["x"]
    return root


@pytest.mark.parametrize(
    ("extra", "path"),
    [
        ({"resources": {"memory": "9" * 400}}, "resources.memory"),
        ({"resources": {"memory": "9" * 310 + "Gi"}}, "resources.memory"),
        ({"parameters": _deep(300)}, "parameters"),
        ({"parameters": {"n": 2**64}}, "parameters"),
        ({"resources": {"cpu": 1e308}}, "resources.cpu"),
        ({"name": "iris\n"}, "name"),
    ],
)
def test_fuzzed_specs_are_400_with_a_path_and_nothing_is_stored(
    client: TestClient, models: Path, extra: dict[str, Any], path: str
) -> None:
    spec = {"name": "iris", "model": str(models / "half_plus_two"), **extra}
    r = client.post("/api/v1/services", json=spec)
    assert r.status_code == 400, r.text
    assert [p["path"] for p in r.json()["problems"]] == [path]
    assert client.get("/api/v1/services").json() == {"services": []}


def test_an_unknown_replica_suggests_the_closest_one(
    client: TestClient, models: Path, store: Store
) -> None:
    create(client, models)
    observe(store, ReplicaRecord("iris-1-abcde", "iris", 1, ReplicaState.READY))
    r = client.get("/api/v1/services/iris/logs?replica=iris-1-abcdf")
    assert r.status_code == 404
    assert r.json()["error"] == (
        "service 'iris' has no replica 'iris-1-abcdf'; did you mean 'iris-1-abcde'?"
    )
