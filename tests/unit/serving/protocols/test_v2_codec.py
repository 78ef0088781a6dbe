"""Open Inference Protocol REST codec: JSON and binary round trips, validation, classification."""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np
import orjson
import pytest
import tritonclient.http as triton

from pier.errors import InternalError, InvalidInput
from pier.serving.protocols import arrays, v2_codec
from pier.serving.tensors import TensorSpec
from tests.unit.serving.protocols import samples

BF16 = samples.BF16
# the shared samples, with BYTES as text (what JSON carries)
SAMPLES: dict[str, tuple[np.dtype[Any], list[Any]]] = {
    **samples.SAMPLES,
    "BYTES": (np.dtype(object), ["a", "", "héllo", "日本"]),
}
DATATYPES = list(SAMPLES)


def tensor(name: str, datatype: str, shape: list[Any], data: Any) -> dict[str, Any]:
    return {"name": name, "datatype": datatype, "shape": shape, "data": data}


def body(*inputs: Any, **extra: Any) -> bytes:
    return json.dumps({"inputs": list(inputs), **extra}).encode()  # orjson stops at 64 bits


def binary_body(
    entries: list[tuple[str, str, list[int], bytes]], **extra: Any
) -> tuple[bytes, int]:
    """A body with every input sent as binary data: (name, datatype, shape, blob)."""
    inputs = [
        {"name": n, "datatype": d, "shape": s, "parameters": {"binary_data_size": len(b)}}
        for n, d, s, b in entries
    ]
    header = orjson.dumps({"inputs": inputs, **extra})
    return header + b"".join(b for *_, b in entries), len(header)


def expected_array(datatype: str, values: list[Any], shape: tuple[int, ...]) -> np.ndarray:
    dtype, _ = SAMPLES[datatype]
    if datatype == "BYTES":
        out = np.empty(len(values), dtype=object)
        out[:] = [v.encode() for v in values]
        return out.reshape(shape)
    return np.array(values, dtype=dtype).reshape(shape)


def assert_same(actual: np.ndarray, expected: np.ndarray) -> None:
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    assert actual.tolist() == expected.tolist()


def rejects(payload: bytes, match: str, header_length: int | None = None) -> None:
    with pytest.raises(InvalidInput, match=match):
        v2_codec.decode_infer_request(payload, header_length)


# --- JSON requests --------------------------------------------------------------------


@pytest.mark.parametrize("datatype", DATATYPES)
def test_json_round_trip_every_datatype(datatype: str) -> None:
    _, values = SAMPLES[datatype]
    request = v2_codec.decode_infer_request(body(tensor("x", datatype, [2, 2], values)), None)
    arr = request.inputs["x"]
    assert_same(arr, expected_array(datatype, values, (2, 2)))

    payload, header_length = v2_codec.encode_infer_response("m", "1", None, [("y", arr, False)])
    assert header_length is None
    (out,) = orjson.loads(payload)["outputs"]
    assert out == {"name": "y", "datatype": datatype, "shape": [2, 2], "data": values}


@pytest.mark.parametrize("datatype", DATATYPES)
def test_binary_round_trip_every_datatype(datatype: str) -> None:
    _, values = SAMPLES[datatype]
    arr = expected_array(datatype, values, (2, 2))
    blob = arrays.encode_bytes_tensor(arr) if datatype == "BYTES" else arr.tobytes()
    payload, header_length = binary_body([("x", datatype, [2, 2], blob)])
    decoded = v2_codec.decode_infer_request(payload, header_length).inputs["x"]
    assert_same(decoded, arr)

    out, out_header = v2_codec.encode_infer_response("m", "1", "7", [("y", decoded, True)])
    assert out_header is not None
    doc = orjson.loads(out[:out_header])
    assert doc["outputs"][0]["parameters"] == {"binary_data_size": len(blob)}
    assert "data" not in doc["outputs"][0]
    assert out[out_header:] == blob


@pytest.mark.parametrize(
    ("datatype", "binary"),
    # tritonclient refuses FP16 and BF16 as JSON, as Triton does
    [(d, b) for d in DATATYPES for b in (False, True) if b or d not in ("FP16", "BF16")],
)
def test_tritonclient_round_trip(datatype: str, binary: bool) -> None:
    """Bodies that the real client builds decode, and the client reads our replies."""
    _, values = SAMPLES[datatype]
    arr = expected_array(datatype, values, (1, 4))
    inp = triton.InferInput("x", [1, 4], datatype)
    inp.set_data_from_numpy(arr, binary_data=binary)
    requested = [triton.InferRequestedOutput("y", binary_data=binary)]
    payload, json_size = triton.InferenceServerClient.generate_request_body(
        [inp], requested, request_id="abc"
    )
    request = v2_codec.decode_infer_request(payload, json_size)
    assert request.id == "abc"
    assert request.outputs is not None
    assert request.outputs[0].binary is binary
    assert_same(request.inputs["x"], arr)

    reply, reply_size = v2_codec.encode_infer_response("m", "1", request.id, [("y", arr, binary)])
    result = triton.InferenceServerClient.parse_response_body(reply, header_length=reply_size)
    got = result.as_numpy("y")
    assert got is not None
    if datatype == "BYTES":  # the client gives str for JSON, bytes for binary
        items = [x.encode() if isinstance(x, str) else x for x in got.reshape(-1).tolist()]
        assert items == arr.reshape(-1).tolist()
    else:
        assert_same(got, arr)


def test_nested_and_flat_data_give_the_same_array() -> None:
    flat = v2_codec.decode_infer_request(
        body(tensor("x", "INT32", [2, 3], [1, 2, 3, 4, 5, 6])), None
    )
    nested = v2_codec.decode_infer_request(
        body(tensor("x", "INT32", [2, 3], [[1, 2, 3], [4, 5, 6]])), None
    )
    # a different nesting with the right element count is read row-major, as Triton does
    other = v2_codec.decode_infer_request(
        body(tensor("x", "INT32", [2, 3], [[1, 2], [3, 4], [5, 6]])), None
    )
    for request in (flat, nested, other):
        assert_same(request.inputs["x"], np.arange(1, 7, dtype=np.int32).reshape(2, 3))


def test_one_dimension_takes_the_declared_shape_too() -> None:
    request = v2_codec.decode_infer_request(
        body(tensor("n", "INT32", [2], [[1], [2]]), tensor("f", "FP32", [3], [1, 2, 3])), None
    )
    assert_same(request.inputs["n"], np.array([1, 2], dtype=np.int32))
    assert_same(request.inputs["f"], np.array([1, 2, 3], dtype=np.float32))


def test_empty_or_null_parameters_are_none() -> None:
    for params in (None, {}):
        item = {**tensor("a", "FP32", [1], [1]), "parameters": params}
        request = v2_codec.decode_infer_request(body(item, parameters=params, outputs=None), None)
        assert request.parameters == {}
        assert request.outputs is None
        assert_same(request.inputs["a"], np.array([1], dtype=np.float32))


def test_scalar_and_empty_tensors() -> None:
    request = v2_codec.decode_infer_request(
        body(
            tensor("s", "FP32", [], 2.5),
            tensor("e", "BOOL", [0, 3], []),
            tensor("b", "BYTES", [0], []),
        ),
        None,
    )
    assert_same(request.inputs["s"], np.array(2.5, dtype=np.float32))
    assert_same(request.inputs["e"], np.empty((0, 3), dtype=np.bool_))
    assert request.inputs["b"].shape == (0,)
    assert request.inputs["b"].dtype == object


def test_numbers_convert_only_where_exact() -> None:
    request = v2_codec.decode_infer_request(
        body(
            tensor("f", "FP32", [2], [1, 2]),  # integers for floats
            tensor("i", "INT8", [2], [2.0, -3.0]),  # integral floats for integers
            tensor("u", "UINT64", [2], [1, 2**64 - 1]),
            tensor("h", "FP16", [1], [65504]),
        ),
        None,
    )
    assert_same(request.inputs["f"], np.array([1, 2], dtype=np.float32))
    assert_same(request.inputs["i"], np.array([2, -3], dtype=np.int8))
    assert_same(request.inputs["u"], np.array([1, 2**64 - 1], dtype=np.uint64))
    assert_same(request.inputs["h"], np.array([65504], dtype=np.float16))


def test_request_fields() -> None:
    request = v2_codec.decode_infer_request(
        body(
            tensor("a", "FP32", [1], [1]),
            tensor("b", "FP32", [1], [2]),
            id="req-1",
            parameters={"binary_data_output": True, "priority": 2},
            outputs=[
                {"name": "y", "parameters": {"binary_data": False}},
                {"name": "p", "parameters": {"classification": 3}},
                {"name": "z"},
            ],
            something_new={"tolerated": True},
        ),
        None,
    )
    assert request.id == "req-1"
    assert request.parameters == {"binary_data_output": True, "priority": 2}
    assert request.binary_output is True
    assert list(request.inputs) == ["a", "b"]
    assert request.outputs == [
        v2_codec.RequestedOutput("y", False, 0, {"binary_data": False}),
        v2_codec.RequestedOutput("p", None, 3, {"classification": 3}),
        v2_codec.RequestedOutput("z", None, 0, {}),
    ]


def test_defaults_and_empty_outputs_list() -> None:
    request = v2_codec.decode_infer_request(body(tensor("a", "FP32", [1], [1]), outputs=[]), None)
    assert request.id is None
    assert request.parameters == {}
    assert request.outputs is None  # an empty list asks for every output, as in Triton
    assert request.binary_output is False
    assert v2_codec.decode_infer_request(body(tensor("a", "FP32", [1], [1]), id=""), None).id == ""


# --- binary requests ------------------------------------------------------------------


def test_binary_and_json_inputs_mixed() -> None:
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    words = np.array([b"x", b"\x00\xff"], dtype=object)
    inputs = [
        {"name": "a", "datatype": "FP32", "shape": [2, 3],
         "parameters": {"binary_data_size": a.nbytes}},
        tensor("j", "INT64", [2], [7, 8]),
        {"name": "w", "datatype": "BYTES", "shape": [2],
         "parameters": {"binary_data_size": len(arrays.encode_bytes_tensor(words))}},
    ]  # fmt: skip
    header = orjson.dumps({"inputs": inputs})
    payload = header + a.tobytes() + arrays.encode_bytes_tensor(words)
    request = v2_codec.decode_infer_request(payload, len(header))
    assert_same(request.inputs["a"], a)
    assert_same(request.inputs["j"], np.array([7, 8], dtype=np.int64))
    assert request.inputs["w"].tolist() == [b"x", b"\x00\xff"]
    assert not request.inputs["a"].flags.writeable  # a view of the body, not a copy


def test_header_length_with_json_only_body() -> None:
    payload = body(tensor("a", "FP32", [1], [1]))
    request = v2_codec.decode_infer_request(payload, len(payload))
    assert request.inputs["a"].tolist() == [1.0]


def test_bytes_tensor_helpers() -> None:
    arr = np.array([[b"ab", b""], [b"\xff", b"xyz"]], dtype=object)
    blob = arrays.encode_bytes_tensor(arr)
    assert blob == b"".join(struct.pack("<I", len(x)) + x for x in arr.reshape(-1).tolist())
    back = arrays.decode_bytes_tensor(memoryview(blob), 4)
    assert back.dtype == object
    assert back.tolist() == [b"ab", b"", b"\xff", b"xyz"]
    assert (
        arrays.encode_bytes_tensor(np.array(["é", "b"]))
        == b"\x02\x00\x00\x00\xc3\xa9\x01\x00\x00\x00b"
    )
    assert arrays.decode_bytes_tensor(memoryview(b""), 0).shape == (0,)
    with pytest.raises(InvalidInput, match="left after 1 elements"):
        arrays.decode_bytes_tensor(memoryview(blob), 1)
    with pytest.raises(InvalidInput, match="length prefix of element 4"):
        arrays.decode_bytes_tensor(memoryview(blob), 5)
    with pytest.raises(InvalidInput, match="element 0 claims 9 bytes but 1 remain"):
        arrays.decode_bytes_tensor(memoryview(b"\x09\x00\x00\x00a"), 1)


def test_raw_request_batched_and_not() -> None:
    x = np.array([1, 2, 3], dtype=np.float32)
    spec = TensorSpec("x", "FP32", (-1, 3))
    request = v2_codec.decode_raw_request(x.tobytes(), spec, batched=True)
    assert request.id is None
    assert request.outputs is None
    assert request.binary_output is True
    assert_same(request.inputs["x"], x.reshape(1, 3))

    fixed = v2_codec.decode_raw_request(x.tobytes() * 2, TensorSpec("x", "FP32", (2, 3)), False)
    assert fixed.inputs["x"].shape == (2, 3)
    variable = v2_codec.decode_raw_request(x.tobytes(), TensorSpec("x", "FP32", (-1, -1)), True)
    assert variable.inputs["x"].shape == (1, 3)
    words = v2_codec.decode_raw_request(
        arrays.encode_bytes_tensor(np.array([b"a", b"b"], dtype=object)),
        TensorSpec("t", "BYTES", (-1, -1)),
        batched=True,
    )
    assert words.inputs["t"].tolist() == [[b"a", b"b"]]


@pytest.mark.parametrize(
    ("payload", "spec", "batched", "match"),
    [
        (b"\x00" * 10, TensorSpec("x", "FP32", (-1, 3)), True, "10 bytes is not a whole number"),
        (b"\x00" * 8, TensorSpec("x", "FP32", (-1, 3)), True, r"shape \[1,3\] needs 3 elements"),
        (b"\x00" * 8, TensorSpec("x", "FP32", (-1, -1, -1)), True, "more than one variable"),
        (b"\x00" * 12, TensorSpec("x", "FP32", (2, -1)), False, r"3 elements do not fit"),
        (b"\x02", TensorSpec("x", "BOOL", (-1, 1)), True, "other than 0 and 1"),
        (b"\x05\x00", TensorSpec("x", "BYTES", (-1,)), True, "length prefix"),
    ],
)
def test_raw_request_errors(payload: bytes, spec: TensorSpec, batched: bool, match: str) -> None:
    with pytest.raises(InvalidInput, match=f"raw binary input 'x'.*{match}"):
        v2_codec.decode_raw_request(payload, spec, batched)


# --- malformed requests ---------------------------------------------------------------

ROW = tensor("x", "FP32", [1], [1.0])


@pytest.mark.parametrize(
    ("payload", "match"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b"{}", "needs 'inputs'"),
        (orjson.dumps({"inputs": {"x": 1}}), "needs 'inputs'"),
        (body(ROW, 3), r"inputs\[1\] must be an object"),
        (body(ROW, {"shape": [1], "datatype": "FP32", "data": [1]}), r"inputs\[1\] needs a string 'name'"),
        (body(ROW, {"name": 5}), r"inputs\[1\] needs a string 'name'"),
        (body(ROW, ROW), r"inputs\[1\] \('x'\): duplicate input name"),
        (body(ROW, {"name": "y", "shape": [1], "data": [1]}), r"inputs\[1\] \('y'\): needs a string 'datatype'"),
        (body(ROW, tensor("y", "FP8", [1], [1])), r"inputs\[1\] \('y'\): unknown datatype 'FP8'"),
        (body(ROW, tensor("y", "fp32", [1], [1])), r"inputs\[1\] \('y'\): unknown datatype"),
        (body(ROW, {"name": "y", "datatype": "FP32", "data": [1]}), r"\('y'\): 'shape' must be a list"),
        (body(ROW, tensor("y", "FP32", [2, -1], [1, 2])), r"\('y'\): 'shape' must be a list of integers >= 0, got \[2,-1\]"),
        (body(ROW, tensor("y", "FP32", [2, 1.5], [1, 2])), r"\('y'\): 'shape' must be"),
        (body(ROW, tensor("y", "FP32", [True], [1])), r"\('y'\): 'shape' must be"),
        (body(ROW, {"name": "y", "datatype": "FP32", "shape": [1]}), r"\('y'\): has neither 'data' nor"),
        (body(ROW, tensor("y", "FP32", [2, 3], [1, 2, 3, 4, 5])), r"^inputs\[1\] \('y'\): shape \[2,3\] needs 6 elements, data has 5$"),
        (body(ROW, tensor("y", "FP32", [2], [[1, 2], [3]])), r"\('y'\): nested data is ragged"),
        (body(ROW, tensor("y", "BYTES", [2], [["a", "b"], ["c"]])), r"\('y'\): nested data is ragged"),
        (body(ROW, tensor("y", "FP32", [2], ["1.5", 2])), r"\('y'\): FP32 data must be numbers; found \"1.5\""),
        (body(ROW, tensor("y", "FP32", [2], [1, None])), r"\('y'\): FP32 data must be numbers; found null"),
        (body(ROW, tensor("y", "FP64", [2], [True, False])), r"\('y'\): FP64 data must be numbers; found true"),
        (body(ROW, tensor("y", "INT32", [2], [1, 1.5])), r"\('y'\): INT32 data must be integers; found 1.5"),
        (body(ROW, tensor("y", "INT32", [2], [1, "2"])), r"\('y'\): INT32 data must be integers; found \"2\""),
        (body(ROW, tensor("y", "BOOL", [2], [True, 1])), r"\('y'\): BOOL data must be true or false; found 1"),
        (body(ROW, tensor("y", "BOOL", [1], ["true"])), r"\('y'\): BOOL data must be true or false"),
        (body(ROW, tensor("y", "BYTES", [2], ["a", 1])), r"\('y'\): BYTES data must be strings; found 1"),
        (body(ROW, tensor("y", "BYTES", [1], [{"b64": "YQ=="}])), r"\('y'\): BYTES data must be strings"),
        (body(ROW, tensor("y", "UINT8", [2], [1, 300])), r"\('y'\): value 300 is out of range for UINT8"),
        (body(ROW, tensor("y", "UINT8", [2], [-1, 3])), r"\('y'\): value -1 is out of range for UINT8"),
        (body(ROW, tensor("y", "INT8", [1], [[-129]])), r"value -129 is out of range for INT8"),
        (body(ROW, tensor("y", "UINT64", [2], [-1, 2**63])), r"value -1 is out of range for UINT64"),
        (body(ROW, tensor("y", "INT64", [1], [2**63])), r"value 9223372036854775808 is out of range for INT64"),
        (body(ROW, tensor("y", "UINT64", [1], [2**64])), r"value 18446744073709551616 is out of range"),
        (body(ROW, tensor("y", "INT16", [1], [1e10])), r"value 10000000000 is out of range for INT16"),
        (body(ROW, tensor("y", "FP32", [2], [1, 1e300])), r"\('y'\): value 1e\+300 is out of range for FP32"),
        (body(ROW, tensor("y", "FP32", [1, 1], [[-1e300]])), r"\('y'\): value -1e\+300 is out of range for FP32"),
        (body(ROW, tensor("y", "FP16", [1], [70000])), r"\('y'\): value 70000 is out of range for FP16"),
        (body(ROW, tensor("y", "BF16", [1], [1e39])), r"\('y'\): value 1e\+39 is out of range for BF16"),
        (body(ROW, {**tensor("y", "FP32", [1], [1]), "parameters": []}), r"input 'parameters' must be an object"),
        (body(ROW, parameters=[1]), r"request 'parameters' must be an object"),
        (body(ROW, parameters={"binary_data_output": 1}), "binary_data_output must be true or false"),
        (body(ROW, id=5), "'id' must be a string, got 5"),
        (body(ROW, outputs={"y": 1}), "'outputs' must be a list"),
        (body(ROW, outputs=[{"parameters": {}}]), r"outputs\[0\] must be an object with a string 'name'"),
        (body(ROW, outputs=["y"]), r"outputs\[0\] must be an object"),
        (body(ROW, outputs=[{"name": "y"}, {"name": "y"}]), r"outputs\[1\] \('y'\): output requested twice"),
        (body(ROW, outputs=[{"name": "y", "parameters": 1}]), r"outputs\[0\] \('y'\) 'parameters' must be an object"),
        (body(ROW, outputs=[{"name": "y", "parameters": {"binary_data": "yes"}}]), r"\('y'\): binary_data must be true or false"),
        (body(ROW, outputs=[{"name": "y", "parameters": {"classification": -1}}]), r"\('y'\): classification must be an integer >= 0"),
        (body(ROW, outputs=[{"name": "y", "parameters": {"classification": True}}]), r"\('y'\): classification must be"),
        (body({"name": "y", "datatype": "FP32", "shape": [1], "parameters": {"binary_data_size": 4}}), r"\('y'\): has binary_data_size but the request has no Inference-Header-Content-Length"),
    ],
)  # fmt: skip
def test_malformed_json_is_invalid_input(payload: bytes, match: str) -> None:
    rejects(payload, match)


def test_malformed_binary_is_invalid_input() -> None:
    four = struct.pack("<f", 1.0)
    good, size = binary_body([("a", "FP32", [1], four)])
    rejects(good + b"\x00", "1 bytes of binary data follow the JSON but no input claims them", size)
    rejects(good[:-1], r"inputs\[0\] \('a'\): binary_data_size is 4 but only 3 bytes", size)
    rejects(good, "raw binary request", 0)
    rejects(good, "Inference-Header-Content-Length is 999 but the body has", 999)
    rejects(good, "Inference-Header-Content-Length is -1", -1)

    wrong, size = binary_body([("a", "FP32", [2], four)])
    rejects(wrong, r"\('a'\): binary data is 4 bytes but shape \[2\] of FP32 needs 8", size)
    flags, size = binary_body([("b", "BOOL", [2], b"\x01\x02")])
    rejects(flags, r"\('b'\): BOOL binary data holds bytes other than 0 and 1", size)
    words = arrays.encode_bytes_tensor(np.array([b"a", b"b"], dtype=object))
    few, size = binary_body([("w", "BYTES", [3], words)])
    rejects(few, r"\('w'\): BYTES data ends inside the length prefix of element 2 of 3", size)
    many, size = binary_body([("w", "BYTES", [1], words)])
    rejects(many, r"\('w'\): BYTES data has 5 bytes left after 1 elements", size)

    header = orjson.dumps(
        {"inputs": [{**tensor("a", "FP32", [1], [1]), "parameters": {"binary_data_size": 4}}]}
    )
    rejects(header + four, r"\('a'\): has both 'data' and parameters.binary_data_size", len(header))
    header = orjson.dumps(
        {"inputs": [{"name": "a", "datatype": "FP32", "shape": [1],
                     "parameters": {"binary_data_size": -4}}]}
    )  # fmt: skip
    rejects(header + four, r"binary_data_size must be an integer >= 0", len(header))


# --- responses ------------------------------------------------------------------------


def test_response_layout_and_id() -> None:
    y = np.array([[1.5, 2.5], [3.5, 4.5]], dtype=np.float32)
    payload, header_length = v2_codec.encode_infer_response(
        "m", "3", "", [("y", y, False)], parameters={"sequence_id": 4}
    )
    assert header_length is None
    assert orjson.loads(payload) == {
        "model_name": "m",
        "model_version": "3",
        "id": "",
        "parameters": {"sequence_id": 4},
        "outputs": [{"name": "y", "datatype": "FP32", "shape": [2, 2], "data": [1.5, 2.5, 3.5, 4.5]}],
    }  # fmt: skip
    no_id, _ = v2_codec.encode_infer_response("m", "3", None, [("y", y, False)])
    assert "id" not in orjson.loads(no_id)


def test_response_mixes_json_and_binary_outputs_in_order() -> None:
    a = np.array([1, 2], dtype=np.int32)
    b = np.array([True, False])
    c = np.array([b"x", b"yz"], dtype=object)
    payload, header_length = v2_codec.encode_infer_response(
        "m", "1", "r", [("a", a, True), ("b", b, False), ("c", c, True)]
    )
    assert header_length is not None
    doc = orjson.loads(payload[:header_length])
    assert [o["name"] for o in doc["outputs"]] == ["a", "b", "c"]
    assert doc["outputs"][1]["data"] == [True, False]
    assert doc["outputs"][0]["parameters"] == {"binary_data_size": 8}
    assert payload[header_length:] == a.tobytes() + arrays.encode_bytes_tensor(c)


def test_response_values() -> None:
    outputs: list[tuple[str, np.ndarray, bool]] = [
        ("nan", np.array([np.nan, np.inf, 1.0], dtype=np.float64), False),  # null, documented
        ("half", np.array([0.5, -1.0], dtype=np.float16), False),
        ("bf", np.array([1.5], dtype=BF16), False),
        ("words", np.array(["é", "b"]), False),  # str arrays are BYTES too
        ("raw", np.array([b"ok", b"\xff"], dtype=object), False),  # not UTF-8 -> binary
        ("flipped", np.arange(6, dtype=np.int16).reshape(2, 3).T, False),
        ("reversed", np.arange(3, dtype=np.uint8)[::-1], False),
        ("flipped_bin", np.arange(6, dtype=np.int16).reshape(2, 3).T, True),
    ]
    payload, header_length = v2_codec.encode_infer_response("m", "1", None, outputs)
    assert header_length is not None
    got = {o["name"]: o for o in orjson.loads(payload[:header_length])["outputs"]}
    assert got["nan"]["data"] == [None, None, 1.0]
    assert got["half"] == {"name": "half", "datatype": "FP16", "shape": [2], "data": [0.5, -1.0]}
    assert got["bf"]["datatype"] == "BF16"
    assert got["bf"]["data"] == [1.5]
    assert got["words"]["data"] == ["é", "b"]
    assert got["raw"]["datatype"] == "BYTES"
    assert got["raw"]["parameters"] == {"binary_data_size": 11}
    assert got["flipped"]["shape"] == [3, 2]
    assert got["flipped"]["data"] == [0, 3, 1, 4, 2, 5]
    assert got["reversed"]["data"] == [2, 1, 0]
    blobs = payload[header_length:]
    assert blobs[:11] == arrays.encode_bytes_tensor(np.array([b"ok", b"\xff"], dtype=object))
    assert blobs[11:] == np.array([[0, 3], [1, 4], [2, 5]], dtype=np.int16).tobytes()


def test_response_rejects_arrays_with_no_datatype() -> None:
    with pytest.raises(InternalError, match="output 'c' has numpy dtype complex128"):
        v2_codec.encode_infer_response("m", "1", None, [("c", np.array([1j]), False)])
    with pytest.raises(InternalError, match="output 'o': BYTES tensor holds a int"):
        v2_codec.encode_infer_response(
            "m", "1", None, [("o", np.array([1, 2], dtype=object), False)]
        )


def test_big_endian_output_is_written_little_endian() -> None:
    arr = np.array([1.0, 2.0], dtype=">f4")
    payload, header_length = v2_codec.encode_infer_response("m", "1", None, [("y", arr, True)])
    assert header_length is not None
    assert payload[header_length:] == np.array([1.0, 2.0], dtype="<f4").tobytes()


def test_encode_error() -> None:
    assert orjson.loads(v2_codec.encode_error('bad "x"\n')) == {"error": 'bad "x"\n'}


# --- classification -------------------------------------------------------------------


def test_classification_batched_with_labels() -> None:
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.25, 0.25]], dtype=np.float32)
    out = v2_codec.classify_output(scores, 2, ["cat", "dog"], batched=True)
    assert out.dtype == object
    assert out.tolist() == [
        [b"0.700000:1:dog", b"0.200000:2"],  # index 2 has no label
        [b"0.500000:0:cat", b"0.250000:1:dog"],  # ties keep the lower index first
    ]


def test_classification_not_batched_and_more_classes_than_elements() -> None:
    scores = np.array([[3, 9], [-1, 4]], dtype=np.int64)
    assert v2_codec.classify_output(scores, 10, None, batched=False).tolist() == [
        b"9:1",
        b"4:3",
        b"3:0",
        b"-1:2",
    ]
    assert v2_codec.classify_output(np.array([[7]], np.uint8), 3, [], batched=True).tolist() == [
        [b"7:0"]
    ]
    flat = v2_codec.classify_output(np.array([[[0.5], [1.5]]], np.float64), 1, ["a", "b"], True)
    assert flat.tolist() == [[b"1.500000:1:b"]]
    empty = v2_codec.classify_output(np.zeros((0, 3), np.float32), 2, None, batched=True)
    assert empty.shape == (0, 2)


def test_classification_unsigned_and_ties_and_nan() -> None:
    big = np.array([0, 2**64 - 1, 5, 2**64 - 1], dtype=np.uint64)
    assert v2_codec.classify_output(big, 3, None, False).tolist() == [
        b"18446744073709551615:1",
        b"18446744073709551615:3",
        b"5:2",
    ]
    scores = np.array([np.nan, 0.5, -np.inf], dtype=np.float32)
    assert v2_codec.classify_output(scores, 3, None, False).tolist() == [
        b"0.500000:1",
        b"-inf:2",
        b"nan:0",
    ]


def test_classification_round_trips_through_response() -> None:
    out = v2_codec.classify_output(np.array([[0.2, 0.8]], np.float32), 1, None, batched=True)
    payload, _ = v2_codec.encode_infer_response("m", "1", None, [("p", out, False)])
    assert orjson.loads(payload)["outputs"][0] == {
        "name": "p", "datatype": "BYTES", "shape": [1, 1], "data": ["0.800000:1"]
    }  # fmt: skip


def test_classification_errors() -> None:
    with pytest.raises(InvalidInput, match=r"output 'p': classification count must be >= 1"):
        v2_codec.classify_output(np.zeros((1, 2), np.float32), 0, None, True, name="p")
    with pytest.raises(InvalidInput, match=r"output 'p': classification needs an integer"):
        v2_codec.classify_output(np.array([[b"a"]], dtype=object), 1, None, True, name="p")
    with pytest.raises(InvalidInput, match=r"classification needs .* \(BOOL\)"):
        v2_codec.classify_output(np.array([[True]]), 1, None, True)
    with pytest.raises(InternalError, match="no batch dimension"):
        v2_codec.classify_output(np.array(1.0), 1, None, True)


# --- property: random tensors survive JSON and binary ---------------------------------


@pytest.mark.parametrize("seed", range(40))
def test_random_tensors_round_trip(seed: int) -> None:
    rng = np.random.default_rng(seed)
    datatypes = [DATATYPES[i] for i in rng.choice(len(DATATYPES), size=3, replace=False)]
    inputs: list[tuple[str, np.ndarray, bool]] = []
    for k, datatype in enumerate(datatypes):
        shape = tuple(int(d) for d in rng.integers(0, 4, size=int(rng.integers(0, 4))))
        inputs.append((f"t{k}", random_array(rng, datatype, shape), bool(rng.integers(2))))
    # the encoder's body is a valid request body once the server fields are ignored
    payload, header_length = v2_codec.encode_infer_response("m", "1", None, inputs)
    doc = orjson.loads(payload if header_length is None else payload[:header_length])
    doc["inputs"] = doc.pop("outputs")
    header = orjson.dumps(doc)
    rest = b"" if header_length is None else payload[header_length:]
    request = v2_codec.decode_infer_request(
        header + rest, None if header_length is None else len(header)
    )
    for name, arr, _ in inputs:
        assert_same(request.inputs[name], arr)


def random_array(rng: np.random.Generator, datatype: str, shape: tuple[int, ...]) -> np.ndarray:
    dtype, _ = SAMPLES[datatype]
    n = int(np.prod(shape))
    if datatype == "BYTES":
        words = ["".join(chr(int(c)) for c in rng.integers(32, 0x3000, size=3)) for _ in range(n)]
        return expected_array("BYTES", words, shape)
    if datatype == "BOOL":
        return np.asarray(rng.integers(0, 2, size=shape)).astype(bool)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.asarray(rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True))
    return np.asarray(rng.standard_normal(size=shape)).astype(dtype)
