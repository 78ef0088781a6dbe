"""The management API over a real SQLite store: every endpoint, auth, and every bad input."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from pier.control.api import create_api
from pier.control.api_models import service_status
from pier.control.records import ReplicaRecord, ReplicaState, ServiceRecord
from pier.control.store import Store
from tests.replicas import observe

TOKEN = "s3cret-token"
GATEWAY = "http://127.0.0.1:8080"


class Hooks:
    """ControlHooks that counts wake() calls and serves fixed log lines."""

    def __init__(self) -> None:
        self.wakes = 0
        self.log_calls: list[tuple[str, str | None, int, bool]] = []

    def wake(self) -> None:
        self.wakes += 1

    async def logs(
        self, service: str, replica: str | None, tail: int, follow: bool
    ) -> AsyncIterator[str]:
        self.log_calls.append((service, replica, tail, follow))
        for line in ("first line", "second line\n"):
            yield line


@pytest.fixture
def hooks() -> Hooks:
    return Hooks()


@pytest.fixture
def client(store: Store, hooks: Hooks) -> Iterator[TestClient]:
    app = create_api(store, hooks, TOKEN, gateway_url=GATEWAY)
    with TestClient(app, headers={"Authorization": f"Bearer {TOKEN}"}) as c:
        yield c


def spec(name: str = "iris", **extra: Any) -> dict[str, Any]:
    return {"name": name, "model": "/models/iris", "processor": "sklearn", **extra}


def eas_spec(name: str = "mnist") -> dict[str, Any]:
    return {
        "name": name,
        "model_path": "oss://bucket/mnist/",
        "processor": "onnx",
        "metadata": {"instance": 3, "cpu": 2, "memory": 2048},
    }


def replica(id: str, state: ReplicaState, revision: int = 1, **extra: Any) -> ReplicaRecord:
    return ReplicaRecord(id=id, service="iris", revision=revision, state=state, **extra)


def assert_error(response: Any, status: int, code: str, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    for word in words:
        assert word in body["error"], body
    return body


# -- meta and auth --------------------------------------------------------------------------


def test_health_needs_no_token(store: Store, hooks: Hooks) -> None:
    with TestClient(create_api(store, hooks, TOKEN, gateway_url=GATEWAY)) as anonymous:
        response = anonymous.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["missing", "wrong", "not-bearer"],
)
@pytest.mark.parametrize("method,path", [("GET", "/api/v1/info"), ("GET", "/api/v1/services")])
def test_endpoints_refuse_missing_or_wrong_tokens(
    store: Store, hooks: Hooks, headers: dict[str, str], method: str, path: str
) -> None:
    with TestClient(create_api(store, hooks, TOKEN, gateway_url=GATEWAY)) as anonymous:
        response = anonymous.request(method, path, headers=headers)
    assert_error(response, 401, "unauthenticated", "token")
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_mutations_refuse_without_token_and_store_nothing(store: Store, hooks: Hooks) -> None:
    with TestClient(create_api(store, hooks, TOKEN, gateway_url=GATEWAY)) as anonymous:
        response = anonymous.post("/api/v1/services", json=spec())
    assert response.status_code == 401
    assert store.list_services() == [] and hooks.wakes == 0


def test_info(client: TestClient) -> None:
    info = client.get("/api/v1/info").json()
    assert info["gateway"] == GATEWAY and info["store"] == "sqlite"
    assert info["version"].count(".") == 2


def test_openapi_document_lists_the_paths(client: TestClient) -> None:
    doc = client.get("/api/v1/openapi.json").json()
    paths = set(doc["paths"])
    assert {
        "/api/v1/health",
        "/api/v1/info",
        "/api/v1/services",
        "/api/v1/services/{name}",
        "/api/v1/services/{name}/scale",
        "/api/v1/services/{name}/stop",
        "/api/v1/services/{name}/start",
        "/api/v1/services/{name}/revisions",
        "/api/v1/services/{name}/revisions/{number}",
        "/api/v1/services/{name}/replicas",
        "/api/v1/services/{name}/events",
        "/api/v1/services/{name}/logs",
    } <= paths
    assert "requestBody" in doc["paths"]["/api/v1/services"]["post"]
    assert any(s.get("scheme") == "bearer" for s in doc["components"]["securitySchemes"].values())
    assert client.get("/api/v1/docs").status_code == 200


# -- create ---------------------------------------------------------------------------------


def test_create_returns_the_service_document(client: TestClient, hooks: Hooks) -> None:
    response = client.post("/api/v1/services", json=spec(replicas=2))
    assert response.status_code == 201, response.text
    doc = response.json()
    assert doc["name"] == "iris" and doc["revision"] == 1 and doc["replicas"] == 2
    assert doc["ready"] == 0 and doc["status"] == "pending" and doc["stopped"] is False
    assert doc["spec"]["model"] == "/models/iris" and doc["spec"]["processor"] == "sklearn"
    assert doc["endpoints"] == {
        "tfserving": f"{GATEWAY}/v1/models/iris:predict",
        "v2": f"{GATEWAY}/v2/models/iris/infer",
    }
    assert doc["replica_list"] == [] and doc["warnings"] == []
    assert [e["kind"] for e in doc["events"]] == ["created"]
    assert doc["created_at"] > 0 and doc["updated_at"] >= doc["created_at"]
    assert hooks.wakes == 1


def test_create_accepts_the_eas_form(client: TestClient, store: Store) -> None:
    response = client.post("/api/v1/services", json={**eas_spec(), "generate_token": "true"})
    assert response.status_code == 201, response.text
    doc = response.json()
    assert doc["replicas"] == 3 and doc["spec"]["model"] == "oss://bucket/mnist/"
    assert doc["spec"]["resources"]["cpu"] == 2
    assert any("generate_token" in w for w in doc["warnings"])
    assert store.get_revision("mnist", 1).spec == doc["spec"]


def test_invalid_spec_lists_every_problem_and_stores_nothing(
    client: TestClient, store: Store, hooks: Hooks
) -> None:
    bad = {"name": "Bad Name", "model": "ftp://x", "replicas": 99, "colour": "red"}
    body = assert_error(client.post("/api/v1/services", json=bad), 400, "invalid_argument")
    paths = {p["path"] for p in body["problems"]}
    assert {"name", "model", "replicas", "colour"} <= paths
    assert all(p["message"] for p in body["problems"])
    assert store.list_services() == [] and hooks.wakes == 0


def test_invalid_eas_spec_names_eas_paths(client: TestClient, store: Store) -> None:
    bad = {**eas_spec(), "metadata": {"instance": -1}}
    body = assert_error(client.post("/api/v1/services", json=bad), 400, "invalid_argument")
    assert any(p["path"].startswith("metadata.instance") for p in body["problems"])
    assert store.list_services() == []


def test_create_twice_is_a_conflict(client: TestClient, hooks: Hooks) -> None:
    assert client.post("/api/v1/services", json=spec()).status_code == 201
    assert_error(client.post("/api/v1/services", json=spec()), 409, "already_exists", "iris")
    assert hooks.wakes == 1


@pytest.mark.parametrize(
    "content,words",
    [
        (b'{"name": "iris",', ["not valid JSON", "line 1 column"]),
        (b"{'name': 'iris'}", ["not valid JSON"]),
        (b"[1, 2]", ["JSON object", "array"]),
        (b'"iris"', ["JSON object", "string"]),
        (b"", ["empty"]),
        (b"\xff\xfe\x00garbage", ["JSON"]),
        (b'{"name": "iris", "model": "/m", "parameters": {"x": NaN}}', ["NaN"]),
        (b"[" * 100_000 + b"]" * 100_000, ["nested too deeply"]),
    ],
    ids=["truncated", "single-quotes", "array", "string", "empty", "binary", "nan", "deep"],
)
def test_malformed_bodies_are_400(
    client: TestClient, store: Store, content: bytes, words: list[str]
) -> None:
    response = client.post(
        "/api/v1/services", content=content, headers={"Content-Type": "application/json"}
    )
    assert_error(response, 400, "invalid_argument", *words)
    assert store.list_services() == []


def test_oversized_body_is_413(client: TestClient, store: Store) -> None:
    big = spec(parameters={"blob": "x" * (1024 * 1024)})
    assert_error(client.post("/api/v1/services", json=big), 413, "resource_exhausted", "limit")
    assert store.list_services() == []


def test_oversized_chunked_body_is_413(client: TestClient, store: Store) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"name": "iris", "model": "/m", "parameters": {"blob": "'
        for _ in range(20):
            yield b"x" * 65536
        yield b'"}}'

    response = client.post("/api/v1/services", content=chunks())
    assert_error(response, 413, "resource_exhausted")
    assert store.list_services() == []


# -- read -----------------------------------------------------------------------------------


def test_list_services(client: TestClient, store: Store) -> None:
    assert client.get("/api/v1/services").json() == {"services": []}
    client.post("/api/v1/services", json=spec("zeta", replicas=2))
    client.post("/api/v1/services", json=spec("alpha"))
    observe(store, ReplicaRecord(id="z1", service="zeta", revision=1, state=ReplicaState.READY))
    services = client.get("/api/v1/services").json()["services"]
    assert [s["name"] for s in services] == ["alpha", "zeta"]
    zeta = services[1]
    assert (zeta["ready"], zeta["replicas"], zeta["status"]) == (1, 2, "scaling")
    assert set(zeta) == {
        "name", "revision", "replicas", "ready", "stopped", "status", "created_at", "updated_at",
    }  # fmt: skip


def test_unknown_service_is_404_everywhere(client: TestClient) -> None:
    for method, path, body in [
        ("GET", "/api/v1/services/nope", None),
        ("PUT", "/api/v1/services/nope", spec("nope")),
        ("DELETE", "/api/v1/services/nope", None),
        ("POST", "/api/v1/services/nope/scale", {"replicas": 1}),
        ("POST", "/api/v1/services/nope/stop", None),
        ("POST", "/api/v1/services/nope/start", None),
        ("GET", "/api/v1/services/nope/revisions", None),
        ("GET", "/api/v1/services/nope/revisions/1", None),
        ("GET", "/api/v1/services/nope/replicas", None),
        ("GET", "/api/v1/services/nope/events", None),
        ("GET", "/api/v1/services/nope/logs", None),
    ]:
        response = client.request(method, path, json=body)
        assert_error(response, 404, "not_found", "nope")


def test_document_shows_replicas_and_status(client: TestClient, store: Store) -> None:
    client.post("/api/v1/services", json=spec(replicas=2))
    observe(store, replica("r1", ReplicaState.READY, address="127.0.0.1:9001", pid=42))
    observe(store, replica("r2", ReplicaState.STARTING))
    doc = client.get("/api/v1/services/iris").json()
    assert (doc["ready"], doc["status"]) == (1, "scaling")
    r1 = doc["replica_list"][0]
    assert r1["id"] == "r1" and r1["state"] == "ready" and r1["address"] == "127.0.0.1:9001"
    assert r1["pid"] == 42 and {"restarts", "exit_code", "reason", "limits"} <= set(r1)
    observe(store, replica("r2", ReplicaState.READY))
    assert client.get("/api/v1/services/iris").json()["status"] == "running"
    replicas = client.get("/api/v1/services/iris/replicas").json()["replicas"]
    assert [r["id"] for r in replicas] == ["r1", "r2"]


# -- update ---------------------------------------------------------------------------------


def test_put_makes_a_new_revision(client: TestClient, store: Store, hooks: Hooks) -> None:
    client.post("/api/v1/services", json=spec())
    response = client.put("/api/v1/services/iris", json=spec(replicas=3))
    assert response.status_code == 200, response.text
    doc = response.json()
    assert doc["changed"] is True and doc["revision"] == 2 and doc["replicas"] == 3
    assert doc["spec"]["replicas"] == 3
    assert hooks.wakes == 2
    assert [r.number for r in store.list_revisions("iris")] == [1, 2]


def test_put_keeps_a_scaled_count_unless_the_spec_changes_it(client: TestClient) -> None:
    client.post("/api/v1/services", json=spec(replicas=1))
    client.post("/api/v1/services/iris/scale", json={"replicas": 4})
    doc = client.put("/api/v1/services/iris", json=spec(replicas=1, parameters={"a": 1})).json()
    assert (doc["revision"], doc["replicas"]) == (2, 4)  # the spec still says 1: scale stays
    doc = client.put("/api/v1/services/iris", json=spec(replicas=2, parameters={"a": 1})).json()
    assert (doc["revision"], doc["replicas"]) == (3, 2)  # the spec changed its count: it wins


def test_unchanged_put_makes_no_revision(client: TestClient, store: Store, hooks: Hooks) -> None:
    client.post("/api/v1/services", json=spec())
    response = client.put("/api/v1/services/iris", json=spec())
    assert response.status_code == 200
    assert response.json()["changed"] is False and response.json()["revision"] == 1
    assert len(store.list_revisions("iris")) == 1 and hooks.wakes == 1


def test_put_accepts_eas_form(client: TestClient) -> None:
    client.post("/api/v1/services", json=eas_spec())
    changed = {**eas_spec(), "metadata": {"instance": 1}}
    doc = client.put("/api/v1/services/mnist", json=changed).json()
    assert doc["changed"] is True and doc["replicas"] == 1


def test_put_with_another_name_is_refused(client: TestClient, store: Store) -> None:
    client.post("/api/v1/services", json=spec())
    response = client.put("/api/v1/services/iris", json=spec("other"))
    assert_error(response, 400, "invalid_argument", "'other'", "'iris'")
    assert len(store.list_revisions("iris")) == 1


def test_put_invalid_spec_stores_nothing(client: TestClient, store: Store) -> None:
    client.post("/api/v1/services", json=spec())
    body = assert_error(
        client.put("/api/v1/services/iris", json=spec(replicas=-1)), 400, "invalid_argument"
    )
    assert body["problems"][0]["path"] == "replicas"
    assert len(store.list_revisions("iris")) == 1


# -- scale, stop, start, delete -------------------------------------------------------------


def test_scale(client: TestClient, hooks: Hooks) -> None:
    client.post("/api/v1/services", json=spec())
    doc = client.post("/api/v1/services/iris/scale", json={"replicas": 4}).json()
    assert doc["replicas"] == 4 and doc["events"][-1]["kind"] == "scaled"
    assert hooks.wakes == 2
    assert client.post("/api/v1/services/iris/scale", json={"replicas": 0}).json()["replicas"] == 0


@pytest.mark.parametrize(
    "body,words",
    [
        ({"replicas": -1}, ["replicas", "greater than or equal to 0"]),
        ({"replicas": 65}, ["replicas", "less than or equal to 64"]),
        ({"replicas": "3"}, ["replicas", "integer"]),
        ({"replicas": 1.5}, ["replicas", "integer"]),
        ({"replicas": True}, ["replicas", "integer"]),
        ({"replicas": None}, ["replicas"]),
        ({}, ["replicas", "required"]),
        ({"replicas": 1, "extra": 1}, ["extra"]),
        ([1], ["body"]),
    ],
)
def test_bad_scale_values_are_400(
    client: TestClient, store: Store, hooks: Hooks, body: Any, words: list[str]
) -> None:
    client.post("/api/v1/services", json=spec())
    response = client.post("/api/v1/services/iris/scale", json=body)
    problems = assert_error(response, 400, "invalid_argument", *words)["problems"]
    assert problems and all(p["path"] and p["message"] for p in problems)
    assert store.get_service("iris").replicas == 1 and hooks.wakes == 1


def test_scale_with_non_json_body_is_400(client: TestClient) -> None:
    client.post("/api/v1/services", json=spec())
    response = client.post(
        "/api/v1/services/iris/scale",
        content=b"{replicas: 2",
        headers={"Content-Type": "application/json"},
    )
    assert_error(response, 400, "invalid_argument", "not valid JSON")


def test_stop_and_start(client: TestClient, store: Store, hooks: Hooks) -> None:
    client.post("/api/v1/services", json=spec(replicas=2))
    observe(store, replica("r1", ReplicaState.READY))
    doc = client.post("/api/v1/services/iris/stop").json()
    assert doc["stopped"] is True and doc["status"] == "stopped" and doc["replicas"] == 2
    doc = client.post("/api/v1/services/iris/start").json()
    assert doc["stopped"] is False and doc["status"] == "scaling"
    kinds = [e["kind"] for e in doc["events"]]
    assert kinds[-2:] == ["stopped", "started"] and hooks.wakes == 3


def test_delete(client: TestClient, store: Store, hooks: Hooks) -> None:
    client.post("/api/v1/services", json=spec())
    response = client.delete("/api/v1/services/iris")
    assert response.status_code == 200 and response.json() == {"deleted": "iris"}
    assert store.list_services() == [] and hooks.wakes == 2
    assert client.get("/api/v1/services/iris").status_code == 404


# -- revisions, events, logs ----------------------------------------------------------------


def test_revisions(client: TestClient) -> None:
    client.post("/api/v1/services", json=spec())
    client.put("/api/v1/services/iris", json=spec(replicas=2))
    revisions = client.get("/api/v1/services/iris/revisions").json()["revisions"]
    assert [r["revision"] for r in revisions] == [1, 2]
    assert revisions[1]["spec"]["replicas"] == 2 and revisions[0]["service"] == "iris"
    one = client.get("/api/v1/services/iris/revisions/1").json()
    assert one["revision"] == 1 and one["spec"]["replicas"] == 1
    assert_error(client.get("/api/v1/services/iris/revisions/9"), 404, "not_found", "9")
    body = assert_error(
        client.get("/api/v1/services/iris/revisions/0"), 400, "invalid_argument", "number"
    )
    assert body["problems"][0]["path"] == "number (path)"
    assert_error(client.get("/api/v1/services/iris/revisions/two"), 400, "invalid_argument")


def test_events_paged(client: TestClient) -> None:
    client.post("/api/v1/services", json=spec())
    for n in (2, 3, 4):
        client.post("/api/v1/services/iris/scale", json={"replicas": n})
    events = client.get("/api/v1/services/iris/events").json()["events"]
    assert [e["kind"] for e in events] == ["created", "scaled", "scaled", "scaled"]
    assert {"id", "service", "kind", "message", "time", "revision", "replica"} <= set(events[0])
    newest = client.get("/api/v1/services/iris/events", params={"limit": 2}).json()["events"]
    assert [e["id"] for e in newest] == [e["id"] for e in events[-2:]]
    after = client.get("/api/v1/services/iris/events", params={"after": events[2]["id"]})
    assert [e["id"] for e in after.json()["events"]] == [events[3]["id"]]


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": "many"}, {"after": -1}])
def test_bad_event_paging_is_400(client: TestClient, params: dict[str, Any]) -> None:
    client.post("/api/v1/services", json=spec())
    response = client.get("/api/v1/services/iris/events", params=params)
    body = assert_error(response, 400, "invalid_argument", next(iter(params)))
    assert body["problems"][0]["path"].endswith("(query)")


def test_logs_stream_plain_text(client: TestClient, store: Store, hooks: Hooks) -> None:
    client.post("/api/v1/services", json=spec())
    observe(store, replica("r1", ReplicaState.READY))
    response = client.get("/api/v1/services/iris/logs")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == "first line\nsecond line\n"
    response = client.get(
        "/api/v1/services/iris/logs", params={"replica": "r1", "tail": 5, "follow": "true"}
    )
    assert response.status_code == 200
    assert hooks.log_calls == [("iris", None, 100, False), ("iris", "r1", 5, True)]


def test_logs_of_unknown_replica_is_404(client: TestClient, hooks: Hooks) -> None:
    client.post("/api/v1/services", json=spec())
    assert_error(
        client.get("/api/v1/services/iris/logs", params={"replica": "ghost"}),
        404,
        "not_found",
        "ghost",
    )
    assert_error(
        client.get("/api/v1/services/iris/logs", params={"tail": -5}), 400, "invalid_argument"
    )
    assert hooks.log_calls == []


# -- routing errors -------------------------------------------------------------------------


def test_unknown_path_and_wrong_method_answer_json(client: TestClient) -> None:
    assert_error(client.get("/api/v1/nothing"), 404, "not_found", "/api/v1/nothing")
    response = client.patch("/api/v1/services/iris", json={})
    assert_error(response, 405, "method_not_allowed", "PATCH")
    assert "PUT" in response.headers["allow"]
    assert_error(client.delete("/api/v1/services"), 405, "method_not_allowed")


# -- status rules ---------------------------------------------------------------------------


def _service(replicas: int = 2, revision: int = 2, stopped: bool = False) -> ServiceRecord:
    return ServiceRecord("iris", revision, replicas, stopped, 0.0, 0.0)


R, S, B, F, D, X = (
    ReplicaState.READY,
    ReplicaState.STARTING,
    ReplicaState.BACKOFF,
    ReplicaState.FAILED,
    ReplicaState.DRAINING,
    ReplicaState.STOPPED,
)


@pytest.mark.parametrize(
    "service,states,expected",
    [
        (_service(), [], "pending"),
        (_service(), [(S, 2), (S, 2)], "pending"),
        (_service(), [(R, 2), (R, 2)], "running"),
        (_service(), [(R, 2), (R, 2), (R, 2)], "running"),
        (_service(replicas=0), [], "running"),
        (_service(), [(R, 2), (S, 2)], "scaling"),
        (_service(), [(R, 2), (B, 2)], "degraded"),
        (_service(), [(B, 2), (S, 2)], "failed"),
        (_service(), [(F, 2)], "failed"),
        (_service(), [(R, 1), (R, 1), (S, 2)], "updating"),
        (_service(), [(D, 1), (R, 2), (R, 2)], "updating"),
        (_service(), [(X, 1), (R, 2), (R, 2)], "running"),
        (_service(stopped=True), [(R, 2)], "stopped"),
    ],
)
def test_service_status(
    service: ServiceRecord, states: list[tuple[ReplicaState, int]], expected: str
) -> None:
    replicas = [replica(f"r{i}", state, rev) for i, (state, rev) in enumerate(states)]
    assert service_status(service, replicas) == expected


def test_scale_up_is_scaling_and_trouble_is_degraded() -> None:
    fresh = replica("r2", S, 2)
    restarted = replica("r2", S, 2, restarts=1, reason="killed by SIGKILL")
    unhealthy = replica("r2", S, 2, reason="health check failed 3 times in a row")
    permanent = replica("r2", S, 2, restarts=1, extra={"permanent": True})
    ready = replica("r1", R, 2)
    assert service_status(_service(), [ready, fresh]) == "scaling"
    for other in (restarted, unhealthy, permanent):
        assert service_status(_service(), [ready, other]) == "degraded"
    # none ready, and the only one fails the same way on every start
    assert service_status(_service(), [permanent]) == "failed"
    assert service_status(_service(), [fresh]) == "pending"


def test_a_stopped_service_counts_no_replica_ready(client: TestClient, store: Store) -> None:
    # Right after stop the controller's last look still shows ready replicas (being drained).
    client.post("/api/v1/services", json=spec(replicas=2))
    for n in (1, 2):
        observe(store, ReplicaRecord(id=f"i{n}", service="iris", revision=1, state=R))
    assert client.get("/api/v1/services/iris").json()["ready"] == 2
    client.post("/api/v1/services/iris/stop")
    [listed] = client.get("/api/v1/services").json()["services"]
    assert (listed["status"], listed["ready"], listed["replicas"]) == ("stopped", 0, 2)
