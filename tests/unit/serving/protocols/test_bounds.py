"""Input bounds in every codec: versions, shapes, element counts and nesting depth."""

from __future__ import annotations

import json
import struct
from typing import Any

import orjson
import pytest

from pier.config import ServerSettings
from pier.errors import InvalidInput, PayloadTooLarge
from pier.serving.protocols import bounds, tfs_codec, v2_codec
from pier.serving.protocols.bounds import TooManyElements, parse_version
from pier.serving.protocols.grpc import tfs_codec as tfs_pb
from pier.serving.protocols.grpc import v2_codec as v2_pb
from pier.serving.protocols.grpc.protos.inference import grpc_service_pb2 as pb
from pier.serving.protocols.grpc.protos.tensorflow.core.framework import tensor_pb2, types_pb2
from pier.serving.protocols.tfs_rest import parse_path
from pier.serving.protocols.v2_rest import parse_model_path
from pier.serving.tensors import TensorSpec

HUGE = 2**62
EMPTY_HUGE = [0, HUGE]
X = TensorSpec("x", "FP32", (-1,))


def v2_json(shape: list[int], data: Any, datatype: str = "FP32") -> bytes:
    return orjson.dumps(
        {"inputs": [{"name": "x", "shape": shape, "datatype": datatype, "data": data}]}
    )


def v2_binary(shape: list[int], blob: bytes, datatype: str = "FP32") -> tuple[bytes, int]:
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": shape,
                    "datatype": datatype,
                    "parameters": {"binary_data_size": len(blob)},
                }
            ]
        }
    )
    return header + blob, len(header)


def oip_request(shape: list[int], datatype: str = "FP32", raw: bytes | None = None) -> Any:
    req = pb.ModelInferRequest(model_name="m")
    req.inputs.add(name="x", datatype=datatype, shape=shape)
    if raw is not None:
        req.raw_input_contents.append(raw)
    return req


def tensor_proto(shape: list[int], values: list[float]) -> Any:
    tp = tensor_pb2.TensorProto(dtype=types_pb2.DT_FLOAT)
    for d in shape:
        tp.tensor_shape.dim.add(size=d)
    tp.float_val.extend(values)
    return tp


# --- 1. an empty dimension next to a huge one -----------------------------------------


def test_empty_shape_with_a_huge_dimension_is_invalid_input_in_every_form() -> None:
    def fails(call: Any) -> str:
        with pytest.raises(InvalidInput) as info:
            call()
        assert not isinstance(info.value, PayloadTooLarge)
        assert "no array has that shape" in info.value.message
        return info.value.message

    assert "inputs[0] ('x')" in fails(
        lambda: v2_codec.decode_infer_request(v2_json(EMPTY_HUGE, []), None)
    )
    body, n = v2_binary(EMPTY_HUGE, b"")
    assert "('x')" in fails(lambda: v2_codec.decode_infer_request(body, n))
    body, n = v2_binary(EMPTY_HUGE, b"", "BYTES")
    assert "('x')" in fails(lambda: v2_codec.decode_infer_request(body, n))
    assert "('x')" in fails(lambda: v2_pb.infer_request_to_arrays(oip_request(EMPTY_HUGE, raw=b"")))
    assert "('x')" in fails(lambda: v2_pb.infer_request_to_arrays(oip_request(EMPTY_HUGE)))
    bytes_raw = oip_request(EMPTY_HUGE, "BYTES", raw=b"")
    assert "('x')" in fails(lambda: v2_pb.infer_request_to_arrays(bytes_raw))
    tp = tensor_proto(EMPTY_HUGE, [])
    assert "input 'x'" in fails(lambda: tfs_pb.tensor_proto_to_array(tp, "FP32", name="x"))


def test_shape_rank_and_negative_dimensions_are_bounded() -> None:
    with pytest.raises(InvalidInput, match="at most 32"):
        v2_codec.decode_infer_request(v2_json([1] * 33, [1.0]), None)
    with pytest.raises(InvalidInput, match="at most 32"):
        v2_pb.infer_request_to_arrays(oip_request([1] * 33, raw=b"\0\0\0\0"))
    with pytest.raises(InvalidInput, match="negative"):
        tfs_pb.tensor_proto_to_array(tensor_proto([-1], [1.0]), "FP32")
    assert bounds.element_count([2, 3], 6) == 6
    assert bounds.element_count([0, 3], 6) == 0
    assert bounds.element_count([], 1) == 1


# --- 2. versions ----------------------------------------------------------------------


@pytest.mark.parametrize("text", ["²", "\u0661", "1²", "", "0", "-1", "+1", " 1", "1.0", "9" * 200])
def test_versions_are_ascii_digits_in_range(text: str) -> None:
    with pytest.raises(InvalidInput, match="version"):
        parse_version(text)


def test_version_bounds() -> None:
    assert parse_version("1") == 1
    assert parse_version("007") == 7
    assert parse_version(str(2**63 - 1)) == 2**63 - 1
    with pytest.raises(InvalidInput, match="out of range"):
        parse_version(str(2**63))
    with pytest.raises(InvalidInput, match="out of range"):
        bounds.check_version(0)


def test_every_rest_path_parser_uses_the_one_version_rule() -> None:
    assert parse_model_path("/v2/models/m/versions/3/infer") == ("m", 3, "infer")
    parsed = parse_path("/v1/models/m/versions/3:predict")
    assert parsed is not None and parsed.version == 3
    for bad in ("²", "\u0661", str(2**63)):
        with pytest.raises(InvalidInput, match="version"):
            parse_model_path(f"/v2/models/m/versions/{bad}/infer")
        with pytest.raises(InvalidInput, match="version"):
            parse_path(f"/v1/models/m/versions/{bad}:predict")


# --- 3. nesting depth -----------------------------------------------------------------


def nested(depth: int) -> Any:
    data: Any = [1.0]
    for _ in range(depth - 1):
        data = [data]
    return data


def test_deep_instances_are_refused_by_the_json_fallback_and_the_walk() -> None:
    deep = b'{"instances": ' + b"[" * 5000 + b"1" + b"]" * 5000 + b"}"
    with pytest.raises(InvalidInput, match="nested too deeply"):
        tfs_codec.decode_predict(deep, [X])
    # NaN sends the body to the standard library's parser, which recurses.
    deep_nan = b'{"a": NaN, "instances": ' + b"[" * 5000 + b"1" + b"]" * 5000 + b"}"
    with pytest.raises(InvalidInput, match="nested too deeply"):
        tfs_codec.decode_predict(deep_nan, [X])
    for specs in ([X], [], [TensorSpec("x", "BYTES", (-1,))]):
        for key in ("instances", "inputs"):
            body = json.dumps({key: nested(40)}).encode()
            with pytest.raises(InvalidInput, match="nested more than 32"):
                tfs_codec.decode_predict(body, specs)
    with pytest.raises(InvalidInput, match="nested more than 32"):
        v2_codec.decode_infer_request(v2_json([1], nested(40)), None)
    assert tfs_codec.decode_predict(json.dumps({"instances": nested(32)}).encode(), []).inputs


# --- 5. max_elements ------------------------------------------------------------------


def test_the_default_matches_the_server_setting() -> None:
    assert ServerSettings.model_fields["max_elements"].default == bounds.DEFAULT_MAX_ELEMENTS


def test_one_value_filling_a_huge_shape_is_refused_before_allocating() -> None:
    tp = tensor_proto([67108864], [1.0])
    with pytest.raises(TooManyElements) as info:
        tfs_pb.tensor_proto_to_array(tp, "FP32", name="x")
    message = info.value.message
    assert "input 'x'" in message and "67108864 elements" in message and "16777216" in message
    with pytest.raises(TooManyElements):
        tfs_pb.tensor_proto_to_array(tensor_proto([2**40], [1.0]), "FP32")
    assert tfs_pb.tensor_proto_to_array(tensor_proto([8], [1.0]), max_elements=8).size == 8
    with pytest.raises(TooManyElements):
        tfs_pb.tensor_proto_to_array(tensor_proto([9], [1.0]), "FP32", max_elements=8)


def test_max_elements_in_every_v2_form() -> None:
    limit = 4
    ok = v2_codec.decode_infer_request(v2_json([2, 2], [1, 2, 3, 4]), None, limit)
    assert ok.inputs["x"].shape == (2, 2)
    with pytest.raises(TooManyElements, match=r"inputs\[0\] \('x'\).*5 elements.*limit of 4"):
        v2_codec.decode_infer_request(v2_json([5], [1, 2, 3, 4, 5]), None, limit)
    with pytest.raises(TooManyElements):  # the largest int64 dimension
        v2_codec.decode_infer_request(v2_json([2**63 - 1], []), None, limit)
    body, n = v2_binary([5], b"\0" * 20)
    with pytest.raises(TooManyElements):
        v2_codec.decode_infer_request(body, n, limit)
    body, n = v2_binary([5], struct.pack("<I", 0) * 5, "BYTES")
    with pytest.raises(TooManyElements):
        v2_codec.decode_infer_request(body, n, limit)
    with pytest.raises(TooManyElements, match="raw binary input 'x'"):
        v2_codec.decode_raw_request(b"\0" * 20, TensorSpec("x", "FP32", (-1,)), False, limit)
    with pytest.raises(TooManyElements, match=r"inputs\[0\] \('x'\)"):
        v2_pb.infer_request_to_arrays(oip_request([5], raw=b"\0" * 20), limit)
    typed = oip_request([5])
    typed.inputs[0].contents.fp32_contents.extend([1.0] * 5)
    with pytest.raises(TooManyElements):
        v2_pb.infer_request_to_arrays(typed, limit)


def test_max_elements_in_tf_rest_rows_and_columns() -> None:
    limit = 4
    for doc in (
        {"instances": [[1.0, 2.0, 3.0]] * 2},
        {"instances": [{"x": [1.0, 2.0, 3.0]}] * 2},
        {"inputs": [[1.0, 2.0, 3.0]] * 2},
        {"inputs": {"x": [[1.0, 2.0, 3.0]] * 2}},
    ):
        for specs in ([X], []):
            with pytest.raises(TooManyElements, match=r"input '(x|input)'.*6 elements.*limit of 4"):
                tfs_codec.decode_predict(json.dumps(doc).encode(), specs, limit)
    ok = tfs_codec.decode_predict(b'{"instances": [1.0, 2.0, 5.0]}', [X], limit)
    assert ok.inputs["x"].tolist() == [1.0, 2.0, 5.0]


def test_numbers_in_binary_requests_are_bounded() -> None:
    header = orjson.dumps(
        {
            "inputs": [
                {
                    "name": "x",
                    "shape": [1],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": 2**63},
                }
            ]
        }
    )
    with pytest.raises(InvalidInput, match="binary_data_size is 9223372036854775808"):
        v2_codec.decode_infer_request(header + b"\0" * 8, len(header))
    # A BYTES length prefix past the data is refused, not read past or allocated.
    body, n = v2_binary([1], struct.pack("<I", 2**32 - 1) + b"ab", "BYTES")
    with pytest.raises(InvalidInput, match="claims 4294967295 bytes but 2 remain"):
        v2_codec.decode_infer_request(body, n)
    with pytest.raises(InvalidInput, match="Inference-Header-Content-Length is 99"):
        v2_codec.decode_infer_request(b"{}", 99)
