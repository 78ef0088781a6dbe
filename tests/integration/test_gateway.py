"""The gateway in front of real `pier serve` replicas, with real clients (httpx, tritonclient)."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.http as triton

from pier.gateway import Gateway, GatewaySettings, GatewayThread, Replica, run_in_thread
from pier.serving import demo
from tests.integration.server import PierServer, free_port

MODEL = "half_plus_two"
V2_BODY = {"inputs": [{"name": "x", "shape": [2], "datatype": "FP32", "data": [1.0, 3.0]}]}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("gateway-models")
    (root / MODEL / "1").mkdir(parents=True)
    (root / MODEL / "1" / "model.onnx").write_bytes(demo.half_plus_two_onnx())
    return root


@pytest.fixture(scope="module")
def replicas(repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[PierServer]]:
    logs = tmp_path_factory.mktemp("gateway-logs")
    servers = [PierServer(repo, logs, "--no-access-log") for _ in range(2)]
    for s in servers:
        s.wait_ready()
    yield servers
    for s in servers:
        s.stop()


def replica(server: PierServer, rid: str, revision: int = 1) -> Replica:
    return Replica(rid, revision, "127.0.0.1", server.port)


@pytest.fixture
def start_gateway() -> Iterator[Callable[..., tuple[Gateway, str]]]:
    handles: list[GatewayThread] = []

    def start(**options: object) -> tuple[Gateway, str]:
        gw = Gateway(GatewaySettings.model_validate(options))
        handle = run_in_thread(gw, "127.0.0.1", 0)
        handles.append(handle)
        return gw, f"http://127.0.0.1:{handle.port}"

    yield start
    for h in handles:
        h.stop()


@pytest.fixture
def gateway(
    replicas: list[PierServer], start_gateway: Callable[..., tuple[Gateway, str]]
) -> tuple[Gateway, str]:
    gw, url = start_gateway()
    gw.set_routes(MODEL, [replica(s, f"r{i}") for i, s in enumerate(replicas)])
    return gw, url


def successes(server: PierServer) -> int:
    """How many inferences a replica served (its V2 statistics)."""
    stats = httpx.get(f"{server.url}/v2/models/{MODEL}/stats").json()
    return int(stats["model_stats"][0]["inference_stats"]["success"]["count"])


def test_tfserving_rest_is_forwarded(gateway: tuple[Gateway, str]) -> None:
    _, url = gateway
    with httpx.Client(base_url=url) as client:  # one keep-alive connection for all
        r = client.post(f"/v1/models/{MODEL}:predict", json={"instances": [1.0, 2.0, 5.0]})
        assert r.status_code == 200 and r.json() == {"predictions": [2.5, 3.0, 4.5]}
        assert client.get(f"/v1/models/{MODEL}").json()["model_version_status"][0]["state"] == (
            "AVAILABLE"
        )
        meta = client.get(f"/v1/models/{MODEL}/metadata").json()
        assert meta["model_spec"]["version"] == "1"
        r = client.post(f"/v1/models/{MODEL}/versions/1:predict", json={"instances": [2.0]})
        assert r.json() == {"predictions": [3.0]}
        # a replica's own error passes through untouched
        r = client.post(f"/v1/models/{MODEL}:predict", content=b"not json")
        assert r.status_code == 400 and "error" in r.json()


def test_v2_json_and_chunked_bodies(gateway: tuple[Gateway, str]) -> None:
    _, url = gateway
    r = httpx.post(f"{url}/v2/models/{MODEL}/infer", json=V2_BODY)
    assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [2.5, 3.5]
    payload = httpx.Request("POST", "/", json=V2_BODY).content

    def chunks() -> Iterator[bytes]:  # no length known: httpx sends it chunked
        yield payload[:10]
        yield payload[10:]

    r = httpx.post(f"{url}/v2/models/{MODEL}/infer", content=chunks())
    assert r.request.headers.get("transfer-encoding") == "chunked"
    assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [2.5, 3.5]
    assert httpx.get(f"{url}/v2/models/{MODEL}/ready").status_code == 200
    assert httpx.get(f"{url}/v2/models/{MODEL}/config").status_code == 200


def test_tritonclient_through_the_gateway(gateway: tuple[Gateway, str]) -> None:
    _, url = gateway
    client = triton.InferenceServerClient(url=url.removeprefix("http://"))
    try:
        assert client.is_server_live()
        assert client.is_model_ready(MODEL)
        assert client.get_model_metadata(MODEL)["name"] == MODEL
        x = np.array([1.0, 2.0, 7.0], dtype=np.float32)
        for binary in (True, False):
            inp = triton.InferInput("x", list(x.shape), "FP32")
            inp.set_data_from_numpy(x, binary_data=binary)
            out = triton.InferRequestedOutput("y", binary_data=binary)
            result = client.infer(MODEL, [inp], outputs=[out])
            np.testing.assert_allclose(result.as_numpy("y"), x / 2 + 2)
    finally:
        client.close()


def test_traffic_reaches_every_replica(
    gateway: tuple[Gateway, str], replicas: list[PierServer]
) -> None:
    _, url = gateway
    before = [successes(s) for s in replicas]
    with httpx.Client(base_url=url) as client:
        for _ in range(60):
            client.post(f"/v1/models/{MODEL}:predict", json={"instances": [1.0]})
    served = [successes(s) - b for s, b in zip(replicas, before, strict=True)]
    assert sum(served) == 60
    assert min(served) >= 10, served


def test_no_ready_replica_is_503_and_unknown_service_404(
    start_gateway: Callable[..., tuple[Gateway, str]],
) -> None:
    gw, url = start_gateway()
    gw.set_routes("iris", [])
    assert gw.services() == ["iris"]
    for path in ("/v1/models/iris:predict", "/v2/models/iris/infer"):
        r = httpx.post(url + path, json={})
        assert r.status_code == 503
        assert r.json() == {"error": "service 'iris' has no ready replica"}
    r = httpx.post(f"{url}/v2/models/nope/infer", json={})
    assert r.status_code == 404 and r.json() == {"error": "service 'nope' not found"}
    r = httpx.get(f"{url}/api/v1/services")
    assert r.status_code == 404 and "error" in r.json()
    gw.remove_routes("iris")
    assert httpx.get(f"{url}/v2/models/iris").status_code == 404
    metrics = httpx.get(f"{url}/metrics").text
    assert 'pier_gateway_no_ready_replica_total{service="iris"} 2.0' in metrics


def test_gateway_answers_health_itself(start_gateway: Callable[..., tuple[Gateway, str]]) -> None:
    _, url = start_gateway()
    assert httpx.get(url + "/").json() == {"status": "alive"}
    assert httpx.get(url + "/v2/health/live").status_code == 200
    assert httpx.get(url + "/v2/health/ready").status_code == 200


def test_dead_replica_requests_still_succeed_and_it_is_ejected(
    replicas: list[PierServer], start_gateway: Callable[..., tuple[Gateway, str]]
) -> None:
    gw, url = start_gateway(eject_after=3, eject_seconds=30.0)
    dead = Replica("dead-1", 1, "127.0.0.1", free_port())  # nothing listens there
    gw.set_routes(MODEL, [dead, replica(replicas[0], "live-1")])
    with httpx.Client(base_url=url) as client:
        for _ in range(40):
            r = client.post(f"/v1/models/{MODEL}:predict", json={"instances": [1.0]})
            assert r.status_code == 200, r.text
    metrics = httpx.get(f"{url}/metrics").text
    assert f'pier_gateway_ejections_total{{service="{MODEL}"}} 1.0' in metrics
    assert f'pier_gateway_retries_total{{service="{MODEL}"}} 3.0' in metrics
    assert f'pier_gateway_requests_total{{code="2xx",revision="1",service="{MODEL}"}} 40.0' in (
        metrics
    )


def test_only_replica_unreachable_is_502_naming_it(
    start_gateway: Callable[..., tuple[Gateway, str]],
) -> None:
    gw, url = start_gateway()
    gw.set_routes(MODEL, [Replica("gone-7", 1, "127.0.0.1", free_port())])
    r = httpx.post(f"{url}/v2/models/{MODEL}/infer", json=V2_BODY)
    assert r.status_code == 502
    assert "gone-7" in r.json()["error"]


def test_killed_replica_requests_still_succeed(
    repo: Path,
    replicas: list[PierServer],
    tmp_path: Path,
    start_gateway: Callable[..., tuple[Gateway, str]],
) -> None:
    doomed = PierServer(repo, tmp_path, "--no-access-log")
    try:
        doomed.wait_ready()
        gw, url = start_gateway()
        gw.set_routes(MODEL, [replica(doomed, "doomed"), replica(replicas[1], "steady")])
        with httpx.Client(base_url=url) as client:
            for _ in range(20):  # pooled connections to both replicas
                assert client.post(f"/v2/models/{MODEL}/infer", json=V2_BODY).status_code == 200
            doomed.proc.send_signal(signal.SIGKILL)
            doomed.proc.wait()
            for _ in range(30):
                r = client.post(f"/v2/models/{MODEL}/infer", json=V2_BODY)
                assert r.status_code == 200, r.text
    finally:
        doomed.stop()


def test_body_over_the_limit_is_413(
    replicas: list[PierServer], start_gateway: Callable[..., tuple[Gateway, str]]
) -> None:
    gw, url = start_gateway(max_body=1000)
    gw.set_routes(MODEL, [replica(replicas[0], "r0")])
    r = httpx.post(f"{url}/v1/models/{MODEL}:predict", json={"instances": [1.0] * 400})
    assert r.status_code == 413 and "1000 bytes" in r.json()["error"]
    r = httpx.post(f"{url}/v1/models/{MODEL}:predict", json={"instances": [1.0] * 10})
    assert r.status_code == 200


def test_metrics_count_by_service_revision_and_class(
    gateway: tuple[Gateway, str],
) -> None:
    _, url = gateway
    for _ in range(3):
        httpx.post(f"{url}/v1/models/{MODEL}:predict", json={"instances": [1.0]})
    httpx.post(f"{url}/v1/models/{MODEL}:predict", content=b"bad")
    text = httpx.get(f"{url}/metrics").text
    assert f'pier_gateway_requests_total{{code="2xx",revision="1",service="{MODEL}"}} 3.0' in text
    assert f'pier_gateway_requests_total{{code="4xx",revision="1",service="{MODEL}"}} 1.0' in text
    assert f'pier_gateway_request_duration_seconds_count{{revision="1",service="{MODEL}"}} 4.0' in (
        text
    )
    assert f'pier_gateway_in_flight_requests{{service="{MODEL}"}} 0.0' in text


def test_route_updates_while_requests_are_in_flight(
    gateway: tuple[Gateway, str], replicas: list[PierServer]
) -> None:
    gw, url = gateway
    a, b = replica(replicas[0], "r0"), replica(replicas[1], "r1", revision=2)
    stop = threading.Event()

    def flip() -> None:
        sets = [[a], [b], [a, b], [b, a]]
        i = 0
        while not stop.is_set():
            gw.set_routes(MODEL, sets[i % 4])
            i += 1

    def send(_: int) -> int:
        with httpx.Client(base_url=url) as client:
            codes = [
                client.post(f"/v2/models/{MODEL}/infer", json=V2_BODY).status_code
                for _ in range(25)
            ]
        return sum(c != 200 for c in codes)

    flipper = threading.Thread(target=flip)
    flipper.start()
    try:
        with ThreadPoolExecutor(8) as pool:
            failures = sum(pool.map(send, range(8)))
    finally:
        stop.set()
        flipper.join()
    assert failures == 0


def raw_exchange(url: str, data: bytes, responses: int) -> bytes:
    """Send raw bytes, read until ``responses`` responses (by their final JSON) arrived."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(data)
        got = b""
        while got.count(b"HTTP/1.1 200") < responses or not got.endswith(b"}"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            got += chunk
        return got


def test_pipelined_requests_are_answered_in_order(gateway: tuple[Gateway, str]) -> None:
    _, url = gateway
    one = b'{"instances":[1.0]}'
    two = b'{"instances":[2.0, 4.0]}'

    def req(body: bytes) -> bytes:
        return (
            f"POST /v1/models/{MODEL}:predict HTTP/1.1\r\nHost: x\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    got = raw_exchange(url, req(one) + req(two) + b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 3)
    first, second, third = got.index(b"[2.5]"), got.index(b"[3.0,4.0]"), got.index(b"alive")
    assert first < second < third


def test_expect_100_continue_is_answered(gateway: tuple[Gateway, str]) -> None:
    _, url = gateway
    body = b'{"instances":[1.0]}'
    head = (
        f"POST /v1/models/{MODEL}:predict HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(head)
        assert sock.recv(1024).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
        sock.sendall(body)
        got = b""
        while not got.endswith(b"}"):
            got += sock.recv(65536)
    assert got.startswith(b"HTTP/1.1 200") and got.endswith(b'{"predictions":[2.5]}')


def test_a_streamed_request_line_is_414_while_other_clients_are_served(
    gateway: tuple[Gateway, str],
) -> None:
    """One client streaming a request line without end neither holds up nor grows the gateway."""
    _, url = gateway
    host, port = url.removeprefix("http://").split(":")
    answer = b""
    sent = 0

    def stream() -> None:
        nonlocal answer, sent
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(b"POST /v1/models/" + MODEL.encode() + b":predict?")
            piece = b"x" * 65536
            try:
                while sent < 96 * 1024 * 1024:
                    sock.sendall(piece)
                    sent += len(piece)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the gateway answered and closed: what is read below
            with contextlib.suppress(ConnectionResetError):
                while chunk := sock.recv(65536):
                    answer += chunk

    streamer = threading.Thread(target=stream)
    streamer.start()
    try:
        with httpx.Client(base_url=url, timeout=5) as client:
            while streamer.is_alive():
                started = time.monotonic()
                r = client.post(f"/v1/models/{MODEL}:predict", json={"instances": [1.0, 2.0, 5.0]})
                assert r.json() == {"predictions": [2.5, 3.0, 4.5]}
                assert time.monotonic() - started < 1.0
    finally:
        streamer.join(30)
    assert sent < 96 * 1024 * 1024  # the gateway stopped reading it long before the end
    assert answer.startswith(b"HTTP/1.1 414 URI Too Long\r\n"), answer[:200]
    assert b"8192 bytes" in answer
