"""Open Inference Protocol REST against a real server, with httpx and tritonclient."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import httpx
import numpy as np
import orjson
import pytest
import tritonclient.http as triton
from tritonclient.utils import InferenceServerException

from tests import builders as b
from tests.integration.server import PierServer


def infer(url: str, model: str, body: dict[str, object], **kw: object) -> httpx.Response:
    return httpx.post(f"{url}/v2/models/{model}/infer", json=body, timeout=10, **kw)  # type: ignore[arg-type]


def test_health_and_server_metadata(url: str) -> None:
    assert httpx.get(url + "/v2/health/live").json() == {"live": True}
    assert httpx.get(url + "/v2/health/ready").status_code == 200
    meta = httpx.get(url + "/v2").json()
    assert meta["name"] == "pier"
    assert "binary_tensor_data" in meta["extensions"]


def test_model_ready_and_metadata(url: str) -> None:
    assert httpx.get(url + "/v2/models/half_plus_two/ready").json() == {
        "name": "half_plus_two",
        "ready": True,
    }
    assert httpx.get(url + "/v2/models/broken/ready").status_code == 503
    assert httpx.get(url + "/v2/models/nope/ready").status_code == 404
    meta = httpx.get(url + "/v2/models/scaler").json()
    assert meta["versions"] == ["1", "2"]
    assert meta["platform"] == "onnxruntime_onnx"
    assert meta["inputs"] == [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}]
    assert httpx.get(url + "/v2/models/scaler/versions/1").json()["versions"] == ["1"]


def test_infer_json_same_numbers_as_tfserving(url: str) -> None:
    body = {
        "id": "r1",
        "inputs": [{"name": "x", "shape": [3], "datatype": "FP32", "data": [1.0, 2.0, 5.0]}],
    }
    r = infer(url, "half_plus_two", body)
    assert r.status_code == 200, r.text
    out = r.json()
    assert (
        out["id"] == "r1" and out["model_name"] == "half_plus_two" and out["model_version"] == "1"
    )
    assert out["outputs"] == [
        {"name": "y", "datatype": "FP32", "shape": [3], "data": [2.5, 3.0, 4.5]}
    ]
    tf = httpx.post(
        url + "/v1/models/half_plus_two:predict", json={"instances": [1.0, 2.0, 5.0]}
    ).json()
    assert tf["predictions"] == out["outputs"][0]["data"]


def test_nested_data_requested_outputs_and_parameters(url: str) -> None:
    body = {
        "parameters": {"note": "hello", "n": 3},
        "inputs": [
            {"name": "input", "shape": [1, 4], "datatype": "FP64", "data": [[5.1, 3.5, 1.4, 0.2]]}
        ],
        "outputs": [{"name": "predict_proba"}],
    }
    r = infer(url, "iris", body)
    assert r.status_code == 200, r.text
    (out,) = r.json()["outputs"]
    assert out["name"] == "predict_proba" and out["shape"] == [1, 3] and out["datatype"] == "FP64"


def test_classification_extension(url: str) -> None:
    body = {
        "inputs": [
            {"name": "input", "shape": [1, 4], "datatype": "FP64", "data": [6.7, 3.0, 5.2, 2.3]}
        ],
        "outputs": [{"name": "predict_proba", "parameters": {"classification": 2}}],
    }
    (out,) = infer(url, "iris", body).json()["outputs"]
    assert out["datatype"] == "BYTES" and out["shape"] == [1, 2]
    value, index, label = out["data"][0].split(":")
    assert (index, label) == ("2", "virginica") and 0.5 < float(value) <= 1.0


def binary_body(header: dict[str, object], *blobs: bytes) -> tuple[bytes, dict[str, str]]:
    js = orjson.dumps(header)
    return js + b"".join(blobs), {"Inference-Header-Content-Length": str(len(js))}


def split_binary(r: httpx.Response) -> tuple[dict[str, object], bytes]:
    n = int(r.headers["inference-header-content-length"])
    return orjson.loads(r.content[:n]), r.content[n:]


def test_binary_tensors_both_ways(url: str) -> None:
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    body, headers = binary_body(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [2, 4],
                    "datatype": "FP32",
                    "parameters": {"binary_data_size": 32},
                }
            ],
            "outputs": [{"name": "y", "parameters": {"binary_data": True}}],
        },
        x.tobytes(),
    )
    r = httpx.post(url + "/v2/models/scaler/versions/1/infer", content=body, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    header, blob = split_binary(r)
    (out,) = header["outputs"]  # type: ignore[misc]
    assert out["parameters"]["binary_data_size"] == 32
    np.testing.assert_array_equal(np.frombuffer(blob, np.float32).reshape(2, 4), x * 2 + 1)


ALL_TYPES = {
    "bool": ("BOOL", np.array([[True, False], [False, True]])),
    "uint8": ("UINT8", np.array([[0, 255], [1, 2]], np.uint8)),
    "uint16": ("UINT16", np.array([[0, 65535], [1, 2]], np.uint16)),
    "uint32": ("UINT32", np.array([[0, 2**32 - 1], [1, 2]], np.uint32)),
    "uint64": ("UINT64", np.array([[0, 2**64 - 1], [1, 2]], np.uint64)),
    "int8": ("INT8", np.array([[-128, 127], [1, 2]], np.int8)),
    "int16": ("INT16", np.array([[-32768, 32767], [1, 2]], np.int16)),
    "int32": ("INT32", np.array([[-(2**31), 2**31 - 1], [1, 2]], np.int32)),
    "int64": ("INT64", np.array([[-(2**63), 2**63 - 1], [1, 2]], np.int64)),
    "fp16": ("FP16", np.array([[0.5, -1.25], [65504, 1e-3]], np.float16)),
    "fp32": ("FP32", np.array([[0.1, -1e30], [3.5, 7]], np.float32)),
    "fp64": ("FP64", np.array([[0.1, -1e300], [3.5, 7]], np.float64)),
    "bytes": ("BYTES", np.array([[b"a", b""], ["é".encode(), b"xyz"]], dtype=object)),
}


def _bytes_blob(arr: np.ndarray) -> bytes:
    return b"".join(struct.pack("<I", len(v)) + v for v in arr.reshape(-1))


@pytest.mark.parametrize("binary", [False, True], ids=["json", "binary"])
def test_every_datatype_round_trips(url: str, binary: bool) -> None:
    inputs, blobs = [], []
    for name, (dt, arr) in ALL_TYPES.items():
        tensor: dict[str, object] = {"name": f"in_{name}", "shape": [2, 2], "datatype": dt}
        if binary:
            blob = _bytes_blob(arr) if dt == "BYTES" else arr.tobytes()
            tensor["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        elif dt == "BYTES":
            tensor["data"] = [v.decode() for v in arr.reshape(-1)]
        else:
            tensor["data"] = arr.tolist()
        inputs.append(tensor)
    body, headers = binary_body(
        {"inputs": inputs, "parameters": {"binary_data_output": binary}}, *blobs
    )
    r = httpx.post(url + "/v2/models/all_types/infer", content=body, headers=headers)
    assert r.status_code == 200, r.text
    if binary:
        header, blob = split_binary(r)
    else:
        header, blob = r.json(), b""
    offset = 0
    outputs = {o["name"]: o for o in header["outputs"]}  # type: ignore[union-attr]
    for name, (dt, arr) in ALL_TYPES.items():
        out = outputs[f"out_{name}"]
        assert out["datatype"] == dt and out["shape"] == [2, 2]
        if binary:
            size = out["parameters"]["binary_data_size"]
            raw = blob[offset : offset + size]
            offset += size
            expect = _bytes_blob(arr) if dt == "BYTES" else arr.tobytes()
            assert raw == expect, name
        elif dt == "BYTES":
            assert out["data"] == [v.decode() for v in arr.reshape(-1)]
        else:
            np.testing.assert_array_equal(
                np.asarray(out["data"], dtype=arr.dtype).reshape(2, 2), arr
            )


def test_tritonclient_http(url: str) -> None:
    client = triton.InferenceServerClient(url=url.removeprefix("http://"))
    try:
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("half_plus_two")
        assert client.get_model_metadata("half_plus_two")["inputs"][0]["name"] == "x"
        x = np.array([[1, 2, 3, 4]], dtype=np.float32)
        for binary in (True, False):
            inp = triton.InferInput("x", [1, 4], "FP32")
            inp.set_data_from_numpy(x, binary_data=binary)
            out = triton.InferRequestedOutput("y", binary_data=binary)
            result = client.infer("scaler", [inp], model_version="2", outputs=[out])
            np.testing.assert_array_equal(result.as_numpy("y"), x * 3 + 1)
        text = triton.InferInput("text", [2], "BYTES")
        text.set_data_from_numpy(np.array([b"hi", b"there"], dtype=object))
        result = client.infer("pyfunc", [text])
        assert result.as_numpy("length").tolist() == [2, 5]
        assert result.as_numpy("upper").tolist() == [b"HI!", b"THERE!"]
        with pytest.raises(InferenceServerException, match="nope"):
            client.infer("nope", [inp])
    finally:
        client.close()


def test_gzip_request_and_response(url: str) -> None:
    import gzip

    body = orjson.dumps(
        {"inputs": [{"name": "x", "shape": [300], "datatype": "FP32", "data": [1.0] * 300}]}
    )
    r = httpx.post(
        url + "/v2/models/half_plus_two/infer",
        content=gzip.compress(body),
        headers={"Content-Encoding": "gzip", "Accept-Encoding": "gzip"},
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-encoding"] == "gzip"
    assert r.json()["outputs"][0]["data"] == [2.5] * 300


@pytest.mark.parametrize(
    ("model", "body", "headers", "status", "fragment"),
    [
        ("half_plus_two", b"{", {}, 400, "JSON"),
        (
            "half_plus_two",
            b'{"inputs": [{"name": "x", "shape": [2], "datatype": "FP32", "data": [1.0]}]}',
            {},
            400,
            "x",
        ),
        (
            "half_plus_two",
            b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1.0]}]}',
            {},
            400,
            "FP32",
        ),
        (
            "half_plus_two",
            b'{"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP32", "data": [1.0]}]}',
            {},
            400,
            "shape",
        ),
        (
            "half_plus_two",
            b'{"inputs": [{"name": "z", "shape": [1], "datatype": "FP32", "data": [1.0]}]}',
            {},
            400,
            "'z'",
        ),
        (
            "half_plus_two",
            b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FLOAT", "data": [1.0]}]}',
            {},
            400,
            "FLOAT",
        ),
        (
            "half_plus_two",
            b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1.0]}], "outputs": [{"name": "q"}]}',
            {},
            400,
            "'q'",
        ),
        ("nope", b'{"inputs": []}', {}, 404, "nope"),
        ("broken", b'{"inputs": []}', {}, 503, "broken"),
    ],
)
def test_bad_requests(
    url: str, model: str, body: bytes, headers: dict[str, str], status: int, fragment: str
) -> None:
    r = httpx.post(f"{url}/v2/models/{model}/infer", content=body, headers=headers)
    assert r.status_code == status, r.text
    assert fragment in r.json()["error"]
    good = {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [2.0]}]}
    assert infer(url, "half_plus_two", good).json()["outputs"][0]["data"] == [3.0]


def test_binary_size_mismatch(url: str) -> None:
    header = {
        "inputs": [
            {"name": "x", "shape": [2], "datatype": "FP32", "parameters": {"binary_data_size": 8}}
        ]
    }
    body, headers = binary_body(header, b"abcd")  # 4 bytes where 8 were announced
    r = httpx.post(url + "/v2/models/half_plus_two/infer", content=body, headers=headers)
    assert r.status_code == 400, r.text
    assert "x" in r.json()["error"]
    headers["Inference-Header-Content-Length"] = "nine"
    r = httpx.post(url + "/v2/models/half_plus_two/infer", content=body, headers=headers)
    assert r.status_code == 400 and "inference-header-content-length" in r.json()["error"]


def test_unknown_route_and_method(url: str) -> None:
    assert httpx.get(url + "/v2/models/half_plus_two/infer").status_code == 405
    r = httpx.get(url + "/v3/whatever")
    assert r.status_code == 404 and "error" in r.json()
    assert httpx.get(url + "/v2/models/half_plus_two/versions/abc").status_code == 400


def test_tritonclient_http_repository_and_statistics(tmp_path: Path) -> None:
    root = tmp_path / "models"
    b.onnx_add_mul(root / "m" / "1" / "model.onnx", 2.0)
    srv = PierServer(root, tmp_path, "--model-control-mode", "explicit")
    try:
        srv.wait_ready()
        client = triton.InferenceServerClient(url=srv.url.removeprefix("http://"))
        index = client.get_model_repository_index()
        assert {"name": "m", "state": "UNAVAILABLE", "reason": "not loaded"} in index
        client.load_model("m", config=json.dumps({"dynamic_batching": {"max_batch_size": 4}}))
        assert client.is_model_ready("m")
        assert client.get_model_config("m")["max_batch_size"] == 4
        x = triton.InferInput("x", [2, 4], "FP32")
        x.set_data_from_numpy(np.ones((2, 4), np.float32))
        client.infer("m", [x])
        (stats,) = client.get_inference_statistics("m")["model_stats"]
        assert stats["inference_count"] == 2 and stats["inference_stats"]["success"]["count"] == 1
        client.unload_model("m")
        assert not client.is_model_ready("m")
        with pytest.raises(InferenceServerException, match="ghost"):
            client.load_model("ghost")
        client.close()
    finally:
        srv.stop()
