"""Bad and oversized inputs against a real ``pier serve``: clear 4xx / gRPC statuses, and the
server keeps answering the reference call after each one."""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from typing import Any

import grpc
import httpx
import orjson
import pytest

from pier.serving import demo
from pier.serving.protocols.grpc.protos.inference import grpc_service_pb2 as pb
from pier.serving.protocols.grpc.protos.inference import grpc_service_pb2_grpc as pb_grpc
from pier.serving.protocols.grpc.protos.tensorflow.core.framework import tensor_pb2, types_pb2
from pier.serving.protocols.grpc.protos.tensorflow_serving.apis import (
    predict_pb2,
    prediction_service_pb2_grpc,
)
from tests.integration.server import PierServer

EMPTY_HUGE = [0, 4611686018427387904]
BAD_CONFIG = '{"runtime": "nope"}'


def reference_call(url: str) -> None:
    """The call every server must keep answering: half_plus_two of [1, 2, 5]."""
    r = httpx.post(
        url + "/v1/models/half_plus_two:predict",
        json={"instances": [1.0, 2.0, 5.0]},
        timeout=10,
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": [2.5, 3.0, 4.5]}


def v2_post(url: str, doc: dict[str, Any], version: str = "") -> httpx.Response:
    where = f"/versions/{version}" if version else ""
    return httpx.post(f"{url}/v2/models/half_plus_two{where}/infer", json=doc, timeout=10)


def v2_binary(url: str, shape: list[int], datatype: str, blob: bytes) -> httpx.Response:
    item = {
        "name": "x",
        "shape": shape,
        "datatype": datatype,
        "parameters": {"binary_data_size": len(blob)},
    }
    header = orjson.dumps({"inputs": [item]})
    return httpx.post(
        url + "/v2/models/half_plus_two/infer",
        content=header + blob,
        headers={"Inference-Header-Content-Length": str(len(header))},
        timeout=10,
    )


def oip_infer(target: str, shape: list[int], *, raw: bool, version: str = "") -> grpc.RpcError:
    req = pb.ModelInferRequest(model_name="half_plus_two", model_version=version)
    req.inputs.add(name="x", datatype="FP32", shape=shape)
    if raw:
        req.raw_input_contents.append(b"")
    with grpc.insecure_channel(target) as channel, pytest.raises(grpc.RpcError) as info:
        pb_grpc.GRPCInferenceServiceStub(channel).ModelInfer(req, timeout=10)
    return info.value


def tf_predict(target: str, shape: list[int], values: list[float]) -> grpc.RpcError:
    req = predict_pb2.PredictRequest()
    req.model_spec.name = "half_plus_two"
    tp: Any = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT)
    for d in shape:
        tp.tensor_shape.dim.add(size=d)
    tp.float_val.extend(values)
    req.inputs["x"].CopyFrom(tp)
    with grpc.insecure_channel(target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.Predict(req, timeout=30)
    return info.value


# --- 1. an empty dimension next to a huge one -----------------------------------------


def test_empty_shape_with_a_huge_dimension_is_a_400(server: PierServer) -> None:
    url = server.url
    doc = {"inputs": [{"name": "x", "shape": EMPTY_HUGE, "datatype": "FP32", "data": []}]}
    for r in (
        v2_post(url, doc),
        v2_binary(url, EMPTY_HUGE, "FP32", b""),
        v2_binary(url, EMPTY_HUGE, "BYTES", b""),
    ):
        assert r.status_code == 400, r.text
        assert "('x')" in r.json()["error"] and "no array has that shape" in r.json()["error"]
        reference_call(url)
    for raw in (True, False):
        exc = oip_infer(server.grpc_target, EMPTY_HUGE, raw=raw)
        assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, exc.details()
        assert "('x')" in (exc.details() or "")
        reference_call(url)
    exc = tf_predict(server.grpc_target, EMPTY_HUGE, [])
    assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, exc.details()
    assert "input 'x'" in (exc.details() or "")
    reference_call(url)


# --- 2. versions ----------------------------------------------------------------------


def test_versions_of_unicode_digits_are_a_400(server: PierServer) -> None:
    url = server.url
    doc = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}]}
    assert v2_post(url, doc, "1").status_code == 200
    for version in ("%C2%B2", "%D9%A1", "9223372036854775808"):
        r = v2_post(url, doc, version)
        assert r.status_code == 400, (version, r.text)
        assert "version" in r.json()["error"]
        r = httpx.post(
            f"{url}/v1/models/half_plus_two/versions/{version}:predict",
            json={"instances": [1.0]},
            timeout=10,
        )
        assert r.status_code == 400, (version, r.text)
        reference_call(url)
    for version in ("\u00b2", "\u0661", "9223372036854775808"):
        exc = oip_infer(server.grpc_target, [1], raw=True, version=version)
        assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT, exc.details()
        with grpc.insecure_channel(server.grpc_target) as channel:
            stub = pb_grpc.GRPCInferenceServiceStub(channel)
            with pytest.raises(grpc.RpcError) as info:
                stub.ModelReady(pb.ModelReadyRequest(name="half_plus_two", version=version))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        reference_call(url)
    req = predict_pb2.PredictRequest()
    req.model_spec.name = "half_plus_two"
    req.model_spec.version.value = -1
    with grpc.insecure_channel(server.grpc_target) as channel:
        stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.Predict(req, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    assert "version -1 is out of range" in (info.value.details() or "")
    reference_call(url)


# --- 3. nesting depth -----------------------------------------------------------------


def test_deeply_nested_instances_are_a_400(server: PierServer) -> None:
    for body in (
        b'{"instances": ' + b"[" * 5000 + b"1.0" + b"]" * 5000 + b"}",
        b'{"instances": ' + b"[" * 5000 + b"NaN" + b"]" * 5000 + b"}",
        b'{"instances": ' + b"[" * 100 + b"1.0" + b"]" * 100 + b"}",
    ):
        r = httpx.post(server.url + "/v1/models/half_plus_two:predict", content=body, timeout=10)
        assert r.status_code == 400, r.text
        assert "nested" in r.json()["error"]
        reference_call(server.url)


# --- 5. max_elements ------------------------------------------------------------------


def test_one_value_filling_a_huge_shape_is_refused_before_allocating(server: PierServer) -> None:
    for shape in ([67108864], [2**28], [2**40]):
        t0 = time.monotonic()
        exc = tf_predict(server.grpc_target, shape, [1.0])
        assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, exc.details()
        details = exc.details() or ""
        assert "input 'x'" in details and f"{shape[0]} elements" in details
        assert "16777216" in details
        assert time.monotonic() - t0 < 2.0  # nothing allocated: no 1.3 GB fill
        reference_call(server.url)


# --- 4 and 5: a server of its own (loads change state; a small max_elements) ----------


def own_server(factory: pytest.TempPathFactory, *args: str) -> Iterator[PierServer]:
    root = factory.mktemp("bounds-models")
    (root / "half_plus_two" / "1").mkdir(parents=True)
    (root / "half_plus_two" / "1" / "model.onnx").write_bytes(demo.half_plus_two_onnx())
    srv = PierServer(root, factory.mktemp("bounds-logs"), *args)
    srv.wait_ready()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PierServer]:
    yield from own_server(tmp_path_factory, "--max-elements", "4")


@pytest.fixture(scope="module")
def reloadable(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PierServer]:
    yield from own_server(tmp_path_factory)


def test_max_elements_setting_reaches_every_protocol(small: PierServer) -> None:
    url = small.url
    reference_call(url)
    five = {"inputs": [{"name": "x", "shape": [5], "datatype": "FP32", "data": [1.0] * 5}]}
    r = v2_post(url, five)
    assert r.status_code == 413, r.text
    assert "('x')" in r.json()["error"] and "limit of 4" in r.json()["error"]
    assert v2_binary(url, [5], "FP32", b"\0" * 20).status_code == 413
    assert v2_binary(url, [5], "BYTES", struct.pack("<I", 0) * 5).status_code == 413
    for doc in ({"instances": [1.0] * 5}, {"inputs": {"x": [1.0] * 5}}):
        r = httpx.post(url + "/v1/models/half_plus_two:predict", json=doc, timeout=10)
        assert r.status_code == 413, r.text
        assert "input 'x'" in r.json()["error"]
    exc = oip_infer(small.grpc_target, [5], raw=False)
    assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    exc = tf_predict(small.grpc_target, [5], [1.0])
    assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "limit of 4" in (exc.details() or "")
    reference_call(url)


def test_a_bad_config_on_reload_keeps_the_model_serving(reloadable: PierServer) -> None:
    url = reloadable.url
    load = f"{url}/v2/repository/models/half_plus_two/load"
    r = httpx.post(load, json={"parameters": {"config": BAD_CONFIG}}, timeout=30)
    assert r.status_code == 400, r.text
    assert "nope" in r.json()["error"] and "keep serving" in r.json()["error"]
    reference_call(url)
    assert httpx.get(url + "/v2/models/half_plus_two/ready", timeout=10).status_code == 200
    req = pb.RepositoryModelLoadRequest(model_name="half_plus_two")
    req.parameters["config"].string_param = BAD_CONFIG
    with grpc.insecure_channel(reloadable.grpc_target) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        with pytest.raises(grpc.RpcError) as info:
            stub.RepositoryModelLoad(req, timeout=30)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "nope" in (info.value.details() or "")
    reference_call(url)
    assert httpx.post(load, timeout=30).status_code == 200  # a plain load still works
    reference_call(url)


# --- 6. request line and header size --------------------------------------------------


def raw_exchange(port: int, chunks: Iterator[bytes]) -> bytes:
    """Send chunks until the server answers or closes; return what it sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            for chunk in chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered and closed while we were still sending
        received = b""
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    break
                received += data
        except ConnectionResetError:
            pass
        return received


def test_oversized_request_line_and_headers_get_414_and_431(server: PierServer) -> None:
    port = server.port

    def long_line() -> Iterator[bytes]:
        yield b"GET /v2/health/live?"
        for _ in range(1536):  # 96 MiB if nothing stopped it
            yield b"a" * 65536

    def many_headers() -> Iterator[bytes]:
        yield b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n"
        for i in range(200):
            yield b"x-h%d: %s\r\n" % (i, b"v" * 1000)
        yield b"\r\n"

    def one_long_header() -> Iterator[bytes]:
        yield b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nx-long: "
        for _ in range(1536):
            yield b"v" * 65536

    for chunks, status in ((long_line(), 414), (many_headers(), 431), (one_long_header(), 431)):
        t0 = time.monotonic()
        answer = raw_exchange(port, chunks)
        assert answer.startswith(b"HTTP/1.1 %d " % status), answer[:200]
        assert b"connection: close" in answer.lower()
        assert time.monotonic() - t0 < 5.0
        reference_call(server.url)
    # Heads within the bounds are served as before.
    ok = raw_exchange(
        port,
        iter(
            [
                b"GET /v2/health/live?"
                + b"a" * 4000
                + b" HTTP/1.1\r\nHost: x\r\n"
                + b"x-h: "
                + b"v" * 30000
                + b"\r\nConnection: close\r\n\r\n"
            ]
        ),
    )
    assert ok.startswith(b"HTTP/1.1 200 "), ok[:200]


def test_a_slow_oversized_head_does_not_hold_up_other_clients(server: PierServer) -> None:
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as slow:
        slow.sendall(b"GET /" + b"a" * 4096)  # an unfinished request line, within bounds
        reference_call(server.url)  # another connection is served meanwhile
        try:
            for _ in range(64):
                slow.sendall(b"a" * 4096)
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = slow.recv(65536)
        assert answer.startswith(b"HTTP/1.1 414 "), answer[:200]
    reference_call(server.url)
