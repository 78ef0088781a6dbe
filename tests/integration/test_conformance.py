"""One set of cases over both transports: the same numbers, the same error classes.

REST goes through httpx (JSON and the binary extension); gRPC through stubs generated
from Pier's own protos (raw contents and typed contents).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import numpy as np
import orjson
import pytest

from pier.serving.protocols import arrays
from pier.serving.protocols.grpc.protos.inference import grpc_service_pb2 as pb
from pier.serving.protocols.grpc.protos.inference import grpc_service_pb2_grpc as pb_grpc
from tests.integration.server import PierServer

# REST status <-> gRPC code: the error classes both transports must agree on.
CLASSES = {
    400: "INVALID_ARGUMENT",
    404: "NOT_FOUND",
    413: "RESOURCE_EXHAUSTED",
    429: "RESOURCE_EXHAUSTED",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
}


@dataclass
class Case:
    model: str
    inputs: list[tuple[str, str, np.ndarray]]
    version: str = ""
    outputs: list[str] | None = None
    error: str | None = None  # expected error class, or None for success


def every_type(fp16_as: str = "FP16") -> list[tuple[str, str, np.ndarray]]:
    """One 2x2 input per input of the all_types model; in_fp16 may claim another datatype."""
    numeric = [
        ("uint8", "UINT8"),
        ("uint16", "UINT16"),
        ("uint32", "UINT32"),
        ("uint64", "UINT64"),
        ("int8", "INT8"),
        ("int16", "INT16"),
        ("int32", "INT32"),
        ("int64", "INT64"),
        ("fp16", fp16_as),
        ("fp32", "FP32"),
        ("fp64", "FP64"),
    ]
    inputs = [
        (
            f"in_{name}",
            dt,
            np.arange(4, dtype=np.dtype(dt.replace("FP", "float").lower())).reshape(2, 2),
        )
        for name, dt in numeric
    ]
    return [
        *inputs,
        ("in_bool", "BOOL", np.array([[True, False], [False, True]])),
        ("in_bytes", "BYTES", np.array([[b"a", b"b"], [b"c", b""]], dtype=object)),
    ]


CASES = {
    # in_fp16 sent as FP32: refused the same way everywhere
    "typed_ints": Case("all_types", every_type(fp16_as="FP32"), error="INVALID_ARGUMENT"),
    "half_plus_two": Case("half_plus_two", [("x", "FP32", np.array([1.0, 2.0, 5.0], np.float32))]),
    "versioned": Case("scaler", [("x", "FP32", np.ones((2, 4), np.float32))], version="1"),
    "requested_output": Case(
        "iris", [("input", "FP64", np.array([[5.1, 3.5, 1.4, 0.2]]))], outputs=["predict_proba"]
    ),
    "bytes": Case("pyfunc", [("text", "BYTES", np.array([b"ab", b"xyz"], dtype=object))]),
    "int_types": Case("all_types", every_type()),
    "batched_model": Case("batched", [("x", "FP32", np.full((3, 4), 2.0, np.float32))]),
    "unknown_model": Case("nope", [("x", "FP32", np.ones(1, np.float32))], error="NOT_FOUND"),
    "unknown_version": Case(
        "scaler", [("x", "FP32", np.ones((1, 4), np.float32))], version="3", error="NOT_FOUND"
    ),
    "failed_model": Case("broken", [("x", "FP32", np.ones(1, np.float32))], error="UNAVAILABLE"),
    "wrong_datatype": Case("half_plus_two", [("x", "FP64", np.ones(1))], error="INVALID_ARGUMENT"),
    "wrong_shape": Case(
        "half_plus_two", [("x", "FP32", np.ones((1, 1), np.float32))], error="INVALID_ARGUMENT"
    ),
    "unknown_input": Case(
        "half_plus_two", [("z", "FP32", np.ones(1, np.float32))], error="INVALID_ARGUMENT"
    ),
    "unknown_output": Case(
        "half_plus_two",
        [("x", "FP32", np.ones(1, np.float32))],
        outputs=["q"],
        error="INVALID_ARGUMENT",
    ),
    "sklearn_predict": Case(
        "linear", [("input", "FP64", np.ones((1, 3)))], error=None, outputs=["predict"]
    ),
}


class RestClient:
    def __init__(self, url: str, binary: bool) -> None:
        self.url, self.binary = url, binary

    def infer(self, case: Case) -> dict[str, np.ndarray] | str:
        tensors: list[tuple[str, str, np.ndarray, bool]] = []
        header: dict[str, Any] = {"inputs": []}
        blobs = []
        for name, dt, arr in case.inputs:
            t: dict[str, Any] = {"name": name, "datatype": dt, "shape": list(arr.shape)}
            if self.binary:
                blob = arrays.encode_bytes_tensor(arr) if dt == "BYTES" else arr.tobytes()
                t["parameters"] = {"binary_data_size": len(blob)}
                blobs.append(blob)
            elif dt == "BYTES":
                t["data"] = [x.decode() for x in arr.reshape(-1)]
            else:
                t["data"] = arr.reshape(-1).tolist()
            header["inputs"].append(t)
            tensors.append((name, dt, arr, self.binary))
        if case.outputs:
            header["outputs"] = [
                {"name": n, "parameters": {"binary_data": True}} for n in case.outputs
            ]
        header["parameters"] = {"binary_data_output": True}
        js = orjson.dumps(header)
        path = (
            f"/v2/models/{case.model}"
            + (f"/versions/{case.version}" if case.version else "")
            + "/infer"
        )
        r = httpx.post(
            self.url + path,
            content=js + b"".join(blobs),
            headers={"Inference-Header-Content-Length": str(len(js))},
            timeout=10,
        )
        if r.status_code != 200:
            assert "error" in r.json()
            return CLASSES.get(r.status_code, f"HTTP {r.status_code}")
        n = int(r.headers["inference-header-content-length"])
        doc = orjson.loads(r.content[:n])
        out, offset = {}, n
        for o in doc["outputs"]:
            size = o["parameters"]["binary_data_size"]
            raw = memoryview(r.content)[offset : offset + size]
            offset += size
            count = int(np.prod(o["shape"]))
            if o["datatype"] == "BYTES":
                out[o["name"]] = arrays.decode_bytes_tensor(raw, count).reshape(o["shape"])
            else:
                dtype = (
                    np.bool_
                    if o["datatype"] == "BOOL"
                    else np.dtype(
                        o["datatype"]
                        .replace("FP", "float")
                        .replace("UINT", "uint")
                        .replace("INT", "int")
                        .lower()
                    )
                )
                out[o["name"]] = np.frombuffer(raw, dtype).reshape(o["shape"])
        return out


class GrpcClient:
    def __init__(self, target: str, typed: bool) -> None:
        self.channel = grpc.insecure_channel(target)
        self.stub = pb_grpc.GRPCInferenceServiceStub(self.channel)
        self.typed = typed

    def infer(self, case: Case) -> dict[str, np.ndarray] | str:
        req = pb.ModelInferRequest(model_name=case.model, model_version=case.version)
        # FP16 has no typed contents field, and raw and typed cannot be mixed in one
        # request: such a request goes raw even from the typed client.
        typed = self.typed and all(dt != "FP16" for _, dt, _ in case.inputs)
        for name, dt, arr in case.inputs:
            t = req.inputs.add(name=name, datatype=dt, shape=list(arr.shape))
            flat = arr.reshape(-1)
            if typed:
                field = {
                    "BOOL": "bool_contents",
                    "BYTES": "bytes_contents",
                    "FP32": "fp32_contents",
                    "FP64": "fp64_contents",
                    "INT64": "int64_contents",
                    "UINT64": "uint64_contents",
                }.get(dt, "uint_contents" if dt.startswith("UINT") else "int_contents")
                getattr(t.contents, field).extend(flat.tolist())
            else:
                req.raw_input_contents.append(
                    arrays.encode_bytes_tensor(arr) if dt == "BYTES" else arr.tobytes()
                )
        for name in case.outputs or []:
            req.outputs.add(name=name)
        try:
            resp = self.stub.ModelInfer(req, timeout=10)
        except grpc.RpcError as exc:
            return exc.code().name
        out = {}
        for o, raw in zip(resp.outputs, resp.raw_output_contents, strict=True):
            count = int(np.prod(o.shape))
            if o.datatype == "BYTES":
                out[o.name] = arrays.decode_bytes_tensor(memoryview(raw), count).reshape(
                    list(o.shape)
                )
            else:
                dtype = (
                    np.bool_
                    if o.datatype == "BOOL"
                    else np.dtype(
                        o.datatype.replace("FP", "float")
                        .replace("UINT", "uint")
                        .replace("INT", "int")
                        .lower()
                    )
                )
                out[o.name] = np.frombuffer(raw, dtype).reshape(list(o.shape))
        return out


@pytest.fixture(scope="module")
def clients(server: PierServer) -> Iterator[dict[str, Any]]:
    grpc_raw = GrpcClient(server.grpc_target, typed=False)
    grpc_typed = GrpcClient(server.grpc_target, typed=True)
    yield {
        "rest-json": RestClient(server.url, binary=False),
        "rest-binary": RestClient(server.url, binary=True),
        "grpc-raw": grpc_raw,
        "grpc-typed": grpc_typed,
    }
    grpc_raw.channel.close()
    grpc_typed.channel.close()


@pytest.mark.parametrize("case_id", sorted(CASES))
def test_same_result_on_every_transport(clients: dict[str, Any], case_id: str) -> None:
    case = CASES[case_id]
    results = {name: client.infer(case) for name, client in clients.items()}
    reference = results["rest-binary"]
    if case.error is not None:
        assert results == dict.fromkeys(results, case.error)
        return
    assert isinstance(reference, dict), reference
    for name, got in results.items():
        assert isinstance(got, dict), (name, got)
        assert got.keys() == reference.keys(), name
        for key in reference:
            np.testing.assert_array_equal(got[key], reference[key], err_msg=f"{name} {key}")
            assert got[key].dtype == reference[key].dtype, (name, key)


def test_oversize_grpc_message_is_refused_and_server_keeps_serving(
    tmp_path: Path, model_repo: Path
) -> None:
    srv = PierServer(
        model_repo, tmp_path, "--grpc-max-message-size", "4096", "--no-strict-readiness"
    )
    try:
        srv.wait_ready()
        client = GrpcClient(srv.grpc_target, typed=False)
        big = Case("half_plus_two", [("x", "FP32", np.ones(10_000, np.float32))])
        assert client.infer(big) == "RESOURCE_EXHAUSTED"
        small = client.infer(CASES["half_plus_two"])
        assert isinstance(small, dict) and small["y"].tolist() == [2.5, 3.0, 4.5]
        client.channel.close()
    finally:
        srv.stop()
