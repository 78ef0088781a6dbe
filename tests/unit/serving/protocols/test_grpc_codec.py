"""gRPC codec: every datatype both ways (raw, typed contents, TensorProto), and every malformed input."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import orjson
import pytest

from pier.errors import InternalError, InvalidInput
from pier.serving.protocols import arrays, tfs_codec, v2_codec
from pier.serving.protocols.grpc import tfs_codec as tfs_pb
from pier.serving.protocols.grpc import v2_codec as v2_pb
from pier.serving.protocols.grpc.protos.inference import grpc_service_pb2 as pb
from pier.serving.protocols.grpc.protos.tensorflow.core.example import example_pb2
from pier.serving.protocols.grpc.protos.tensorflow.core.framework import tensor_pb2, types_pb2
from pier.serving.protocols.grpc.protos.tensorflow_serving.apis import input_pb2, predict_pb2
from tests.unit.serving.protocols import samples

SAMPLES = samples.SAMPLES
DATATYPES = list(SAMPLES)
# datatype -> InferTensorContents list, as the protocol assigns them
CONTENTS = {
    "BOOL": "bool_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}
# datatype -> (TensorFlow dtype, TensorProto list for typed values)
TF = {
    "BOOL": (types_pb2.DT_BOOL, "bool_val"),
    "UINT8": (types_pb2.DT_UINT8, "int_val"),
    "UINT16": (types_pb2.DT_UINT16, "int_val"),
    "UINT32": (types_pb2.DT_UINT32, "uint32_val"),
    "UINT64": (types_pb2.DT_UINT64, "uint64_val"),
    "INT8": (types_pb2.DT_INT8, "int_val"),
    "INT16": (types_pb2.DT_INT16, "int_val"),
    "INT32": (types_pb2.DT_INT32, "int_val"),
    "INT64": (types_pb2.DT_INT64, "int64_val"),
    "FP16": (types_pb2.DT_HALF, "half_val"),
    "FP32": (types_pb2.DT_FLOAT, "float_val"),
    "FP64": (types_pb2.DT_DOUBLE, "double_val"),
    "BF16": (types_pb2.DT_BFLOAT16, "half_val"),
    "BYTES": (types_pb2.DT_STRING, "string_val"),
}


def sample(datatype: str, shape: tuple[int, ...] = (2, 2)) -> np.ndarray[Any, Any]:
    dtype, values = SAMPLES[datatype]
    if datatype == "BYTES":
        arr = np.empty(len(values), dtype=object)
        arr[:] = values
        return arr.reshape(shape)
    return np.array(values, dtype=dtype).reshape(shape)


def blob(arr: np.ndarray[Any, Any]) -> bytes:
    return arrays.encode_bytes_tensor(arr) if arr.dtype == object else arr.tobytes()


def raw_request(*tensors: tuple[str, str, list[int], bytes]) -> pb.ModelInferRequest:
    req = pb.ModelInferRequest(model_name="m")
    for name, datatype, shape, data in tensors:
        req.inputs.add(name=name, datatype=datatype, shape=shape)
        req.raw_input_contents.append(data)
    return req


def typed_request(
    name: str, datatype: str, shape: list[int], **contents: Any
) -> pb.ModelInferRequest:
    req = pb.ModelInferRequest(model_name="m")
    tensor = req.inputs.add(name=name, datatype=datatype, shape=shape)
    for field, values in contents.items():
        getattr(tensor.contents, field).extend(values)
    return req


def assert_same(actual: np.ndarray[Any, Any], expected: np.ndarray[Any, Any]) -> None:
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    assert actual.tolist() == expected.tolist()


# --- Open Inference Protocol: raw contents ----------------------------------------------


@pytest.mark.parametrize("datatype", DATATYPES)
def test_raw_round_trip(datatype: str) -> None:
    arr = sample(datatype)
    inputs, outputs, params = v2_pb.infer_request_to_arrays(
        raw_request(("x", datatype, [2, 2], blob(arr)))
    )
    assert list(inputs) == ["x"] and outputs is None and params == {}
    assert_same(inputs["x"], arr)

    response = v2_pb.arrays_to_infer_response("m", "3", "req-1", [("y", inputs["x"])])
    wire = pb.ModelInferResponse.FromString(response.SerializeToString())
    assert (wire.model_name, wire.model_version, wire.id) == ("m", "3", "req-1")
    (out,) = wire.outputs
    assert (out.name, out.datatype, list(out.shape)) == ("y", datatype, [2, 2])
    assert not out.HasField("contents")
    assert list(wire.raw_output_contents) == [blob(arr)]


def test_raw_inputs_are_read_only_views() -> None:
    arr = np.arange(6, dtype=np.float32)
    inputs, _, _ = v2_pb.infer_request_to_arrays(raw_request(("x", "FP32", [2, 3], arr.tobytes())))
    assert inputs["x"].shape == (2, 3) and not inputs["x"].flags.writeable


def test_several_raw_inputs_keep_request_order() -> None:
    a, b = np.array([1, 2], np.int64), np.array([b"x"], dtype=object)
    req = raw_request(("b", "INT64", [2], a.tobytes()), ("a", "BYTES", [1], blob(b)))
    inputs, _, _ = v2_pb.infer_request_to_arrays(req)
    assert list(inputs) == ["b", "a"]
    assert inputs["b"].tolist() == [1, 2] and inputs["a"].tolist() == [b"x"]


@pytest.mark.parametrize("datatype", ["FP32", "BYTES"])
def test_zero_element_tensors(datatype: str) -> None:
    raw, _, _ = v2_pb.infer_request_to_arrays(raw_request(("x", datatype, [0, 3], b"")))
    typed, _, _ = v2_pb.infer_request_to_arrays(typed_request("x", datatype, [0, 3]))
    for arr in (raw["x"], typed["x"]):
        assert arr.shape == (0, 3) and arr.dtype == SAMPLES[datatype][0]


# --- Open Inference Protocol: typed contents --------------------------------------------


@pytest.mark.parametrize("datatype", list(CONTENTS))
def test_typed_contents_round_trip(datatype: str) -> None:
    arr = sample(datatype)
    req = typed_request("x", datatype, [2, 2], **{CONTENTS[datatype]: arr.reshape(-1).tolist()})
    inputs, _, _ = v2_pb.infer_request_to_arrays(req)
    assert_same(inputs["x"], arr)


@pytest.mark.parametrize("datatype", ["FP16", "BF16"])
def test_half_precision_is_raw_only(datatype: str) -> None:
    req = typed_request("x", datatype, [1], fp32_contents=[1.0])
    with pytest.raises(InvalidInput, match=r"inputs\[0\] \('x'\): .*raw_input_contents"):
        v2_pb.infer_request_to_arrays(req)


def _params(msg: Any, **values: Any) -> None:
    for key, (kind, value) in values.items():
        setattr(msg[key], kind, value)


def test_parameters_and_requested_outputs() -> None:
    req = raw_request(("x", "FP32", [1], b"\x00\x00\x80\x3f"))
    _params(
        req.parameters,
        flag=("bool_param", True),
        n=("int64_param", -5),
        s=("string_param", "hi"),
        f=("double_param", 0.25),
        u=("uint64_param", 2**64 - 1),
    )
    top = req.outputs.add(name="probs")
    _params(top.parameters, classification=("int64_param", 3), note=("string_param", "x"))
    req.outputs.add(name="y")
    _, outputs, params = v2_pb.infer_request_to_arrays(req)
    assert params == {"flag": True, "n": -5, "s": "hi", "f": 0.25, "u": 2**64 - 1}
    assert outputs == [
        v2_codec.RequestedOutput("probs", None, 3, {"classification": 3, "note": "x"}),
        v2_codec.RequestedOutput("y", None, 0, {}),
    ]


# --- Open Inference Protocol: malformed requests ----------------------------------------

F32_3 = np.zeros(3, np.float32).tobytes()


def _two_inputs_one_raw() -> pb.ModelInferRequest:
    req = raw_request(("x", "FP32", [3], F32_3))
    req.inputs.add(name="z", datatype="FP32", shape=[3])
    return req


def _raw_and_typed() -> pb.ModelInferRequest:
    req = raw_request(("x", "FP32", [3], F32_3))
    req.inputs[0].contents.fp32_contents.extend([1, 2, 3])
    return req


def _duplicate_inputs() -> pb.ModelInferRequest:
    return raw_request(("x", "FP32", [3], F32_3), ("x", "FP32", [3], F32_3))


def _empty_parameter() -> pb.ModelInferRequest:
    req = raw_request(("x", "FP32", [3], F32_3))
    req.parameters["p"].SetInParent()
    return req


def _bool_classification() -> pb.ModelInferRequest:
    req = raw_request(("x", "FP32", [3], F32_3))
    req.outputs.add(name="y").parameters["classification"].bool_param = True
    return req


def _duplicate_outputs() -> pb.ModelInferRequest:
    req = raw_request(("x", "FP32", [3], F32_3))
    req.outputs.add(name="y")
    req.outputs.add(name="y")
    return req


MALFORMED: dict[str, tuple[Callable[[], pb.ModelInferRequest], str]] = {
    "raw count": (_two_inputs_one_raw, r"2 inputs but 1 raw_input_contents"),
    "raw size": (
        lambda: raw_request(("x", "FP32", [3], b"\x00" * 8)),
        r"inputs\[0\] \('x'\): raw_input_contents\[0\] is 8 bytes but shape \[3\] of FP32 needs 12",
    ),
    "raw and typed": (_raw_and_typed, r"\('x'\): has typed contents"),
    "typed count": (
        lambda: typed_request("x", "FP32", [3], fp32_contents=[1, 2]),
        r"\('x'\): shape \[3\] needs 3 elements, contents.fp32_contents has 2",
    ),
    "typed bytes count": (
        lambda: typed_request("x", "BYTES", [2], bytes_contents=[b"a"]),
        r"\('x'\): shape \[2\] needs 2 elements, contents.bytes_contents has 1",
    ),
    "wrong typed list": (
        lambda: typed_request("x", "FP32", [2], int_contents=[1, 2]),
        r"\('x'\): FP32 data goes in contents.fp32_contents, but the request sets int_contents",
    ),
    "two typed lists": (
        lambda: typed_request("x", "INT32", [1], int_contents=[1], fp32_contents=[1]),
        r"\('x'\): INT32 data goes in contents.int_contents",
    ),
    "no data": (lambda: typed_request("x", "FP32", [2]), r"\('x'\): has no data"),
    "unknown datatype raw": (
        lambda: raw_request(("x", "FLOAT", [3], F32_3)),
        r"\('x'\): unknown datatype 'FLOAT'",
    ),
    "unknown datatype typed": (
        lambda: typed_request("x", "FLOAT", [1], fp32_contents=[1]),
        r"\('x'\): unknown datatype 'FLOAT'",
    ),
    "negative dim": (
        lambda: raw_request(("x", "FP32", [-1, 3], F32_3)),
        r"\('x'\): shape \[-1,3\] has a negative dimension",
    ),
    "bool byte": (
        lambda: raw_request(("x", "BOOL", [2], b"\x01\x02")),
        r"\('x'\): .*other than 0 and 1",
    ),
    "bytes truncated": (
        lambda: raw_request(("x", "BYTES", [1], b"\x05\x00\x00\x00ab")),
        r"\('x'\): BYTES element 0 claims 5 bytes but 2 remain",
    ),
    "bytes extra": (
        lambda: raw_request(("x", "BYTES", [1], b"\x01\x00\x00\x00abc")),
        r"\('x'\): BYTES data has 2 bytes left",
    ),
    "int8 range": (
        lambda: typed_request("x", "INT8", [2], int_contents=[1, 300]),
        r"\('x'\): value 300 is out of range for INT8",
    ),
    "uint16 range": (
        lambda: typed_request("x", "UINT16", [1], uint_contents=[70000]),
        r"\('x'\): value 70000 is out of range for UINT16",
    ),
    "duplicate input": (_duplicate_inputs, r"inputs\[1\] \('x'\): duplicate input name"),
    "empty parameter": (_empty_parameter, r"request parameter 'p' has no value"),
    "classification type": (
        _bool_classification,
        r"outputs\[0\] \('y'\): classification must be an int64_param",
    ),
    "duplicate output": (_duplicate_outputs, r"outputs\[1\] \('y'\): output requested twice"),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_malformed_requests(case: str) -> None:
    build, message = MALFORMED[case]
    with pytest.raises(InvalidInput, match=message):
        v2_pb.infer_request_to_arrays(build())


# --- Open Inference Protocol: responses -------------------------------------------------


def test_response_parameters() -> None:
    response = v2_pb.arrays_to_infer_response(
        "m",
        "1",
        None,
        [],
        {"b": False, "i": -(2**63), "u": 2**63, "f": 1.5, "s": "x"},
    )
    kinds = {k: p.WhichOneof("parameter_choice") for k, p in response.parameters.items()}
    assert kinds == {
        "b": "bool_param",
        "i": "int64_param",
        "u": "uint64_param",
        "f": "double_param",
        "s": "string_param",
    }
    assert response.id == "" and response.parameters["u"].uint64_param == 2**63
    with pytest.raises(InternalError, match=r"response parameter 'x'"):
        v2_pb.arrays_to_infer_response("m", "1", None, [], {"x": [1]})
    with pytest.raises(InternalError, match=r"response parameter 'big'"):
        v2_pb.arrays_to_infer_response("m", "1", None, [], {"big": 2**64})


def test_response_normalises_layout_and_strings() -> None:
    big_endian = np.array([1.0, 2.0], dtype=">f4")
    transposed = np.arange(6, dtype=np.int32).reshape(2, 3).T
    text = np.array(["é", "b"])
    response = v2_pb.arrays_to_infer_response(
        "m", "1", "", [("be", big_endian), ("t", transposed), ("s", text)]
    )
    assert [o.datatype for o in response.outputs] == ["FP32", "INT32", "BYTES"]
    raw = response.raw_output_contents
    assert raw[0] == np.array([1.0, 2.0], "<f4").tobytes()
    assert np.frombuffer(raw[1], np.int32).reshape(3, 2).tolist() == transposed.tolist()
    assert raw[2] == b"\x02\x00\x00\x00" + "é".encode() + b"\x01\x00\x00\x00b"


def test_response_rejects_what_v2_cannot_carry() -> None:
    with pytest.raises(InternalError, match=r"output 'c' has numpy dtype complex64"):
        v2_pb.arrays_to_infer_response("m", "1", "", [("c", np.zeros(2, np.complex64))])
    bad = np.array([b"a", 3], dtype=object)
    with pytest.raises(InternalError, match=r"output 'o': BYTES tensor holds a int"):
        v2_pb.arrays_to_infer_response("m", "1", "", [("o", bad)])


# --- TF Serving: TensorProto ------------------------------------------------------------


@pytest.mark.parametrize("datatype", DATATYPES)
def test_tensor_proto_round_trip(datatype: str) -> None:
    arr = sample(datatype)
    tp = tensor_pb2.TensorProto.FromString(tfs_pb.array_to_tensor_proto(arr).SerializeToString())
    dtype, _ = TF[datatype]
    assert tp.dtype == dtype
    assert [d.size for d in tp.tensor_shape.dim] == [2, 2]
    # as tf.make_tensor_proto writes them
    if datatype == "BYTES":
        assert list(tp.string_val) == SAMPLES["BYTES"][1] and not tp.tensor_content
    elif datatype == "BOOL":
        assert list(tp.bool_val) == SAMPLES["BOOL"][1] and not tp.tensor_content
    else:
        assert tp.tensor_content == arr.tobytes()
    assert_same(tfs_pb.tensor_proto_to_array(tp, datatype), arr)
    assert_same(tfs_pb.tensor_proto_to_array(tp, None), arr)


def typed_values(datatype: str, arr: np.ndarray[Any, Any]) -> list[Any]:
    if datatype in ("FP16", "BF16"):  # the 16 bits of each element, as int32
        return arr.reshape(-1).view(np.uint16).astype(np.int32).tolist()
    values: list[Any] = arr.reshape(-1).tolist()
    return values


def typed_tensor(datatype: str, shape: list[int], values: list[Any]) -> tensor_pb2.TensorProto:
    dtype, field = TF[datatype]
    tp = tensor_pb2.TensorProto(dtype=dtype)
    for d in shape:
        tp.tensor_shape.dim.add(size=d)
    getattr(tp, field).extend(values)
    return tp


@pytest.mark.parametrize("datatype", DATATYPES)
def test_tensor_proto_typed_values(datatype: str) -> None:
    arr = sample(datatype)
    tp = typed_tensor(datatype, [2, 2], typed_values(datatype, arr))
    assert_same(tfs_pb.tensor_proto_to_array(tp, datatype), arr)


@pytest.mark.parametrize("datatype", DATATYPES)
def test_single_typed_value_fills_the_shape(datatype: str) -> None:
    arr = sample(datatype, (4,))[1:2]
    tp = typed_tensor(datatype, [2, 3], typed_values(datatype, arr))
    out = tfs_pb.tensor_proto_to_array(tp, datatype)
    assert out.shape == (2, 3) and out.dtype == arr.dtype
    assert out.reshape(-1).tolist() == arr.tolist() * 6


def test_half_val_holds_float16_bits() -> None:
    tp = typed_tensor("FP16", [3], [0x3800, 0xC000, 0x7C00])  # 0.5, -2.0, inf
    assert tfs_pb.tensor_proto_to_array(tp).tolist() == [0.5, -2.0, float("inf")]


def test_scalars_and_empty_tensors() -> None:
    scalar = tfs_pb.array_to_tensor_proto(np.float64(2.5) * np.ones(()))
    assert not scalar.tensor_shape.dim
    assert tfs_pb.tensor_proto_to_array(scalar).shape == ()
    empty = typed_tensor("FP32", [0, 4], [])
    assert tfs_pb.tensor_proto_to_array(empty).shape == (0, 4)
    unset = typed_tensor("FP32", [2], [1.0, 2.0])
    unset.dtype = types_pb2.DT_INVALID
    assert tfs_pb.tensor_proto_to_array(unset, "FP32").tolist() == [1.0, 2.0]


def test_array_to_tensor_proto_fills_a_given_message() -> None:
    response = predict_pb2.PredictResponse()
    tfs_pb.array_to_tensor_proto(np.array([1.0, 2.0], dtype=">f8"), response.outputs["y"])
    y = predict_pb2.PredictResponse.FromString(response.SerializeToString()).outputs["y"]
    assert y.dtype == types_pb2.DT_DOUBLE and y.tensor_content == np.array([1.0, 2.0]).tobytes()
    with pytest.raises(InternalError, match=r"complex128 has no TensorFlow dtype"):
        tfs_pb.array_to_tensor_proto(np.zeros(1, np.complex128))


def _tensor(**fields: Any) -> tensor_pb2.TensorProto:
    shape = fields.pop("shape", [3])
    tp = tensor_pb2.TensorProto(**fields)
    for d in shape:
        tp.tensor_shape.dim.add(size=d)
    return tp


BAD_TENSORS: dict[str, tuple[tensor_pb2.TensorProto, str | None, str]] = {
    "unknown rank": (
        tensor_pb2.TensorProto(
            dtype=types_pb2.DT_FLOAT, float_val=[1.0], tensor_shape={"unknown_rank": True}
        ),
        None,
        r"unknown_rank",
    ),
    "negative dim": (
        _tensor(dtype=types_pb2.DT_FLOAT, float_val=[1.0], shape=[-1, 2]),
        None,
        r"shape \[-1,2\] has a negative dimension",
    ),
    "content size": (
        _tensor(dtype=types_pb2.DT_FLOAT, tensor_content=b"\x00" * 8),
        None,
        r"DT_FLOAT tensor_content is 8 bytes but shape \[3\] of FP32 needs 12",
    ),
    "value count": (
        _tensor(dtype=types_pb2.DT_INT64, int64_val=[1, 2]),
        None,
        r"shape \[3\] needs 3 values but int64_val has 2",
    ),
    "no values": (
        _tensor(dtype=types_pb2.DT_FLOAT),
        None,
        r"shape \[3\] needs 3 values but float_val has 0",
    ),
    "dtype mismatch": (
        _tensor(dtype=types_pb2.DT_DOUBLE, double_val=[1, 2, 3]),
        "FP32",
        r"dtype is DT_DOUBLE but the model takes FP32 \(DT_FLOAT\)",
    ),
    "no dtype": (_tensor(float_val=[1, 2, 3]), None, r"dtype is not set"),
    "complex": (
        _tensor(dtype=types_pb2.DT_COMPLEX64, scomplex_val=[1, 0] * 3),
        None,
        r"DT_COMPLEX64 is not supported",
    ),
    "unknown dtype": (_tensor(dtype=99), None, r"dtype 99 is not supported"),  # type: ignore[arg-type]
    "string content": (
        _tensor(dtype=types_pb2.DT_STRING, tensor_content=b"abc"),
        None,
        r"DT_STRING values go in string_val",
    ),
    "int8 range": (
        _tensor(dtype=types_pb2.DT_INT8, int_val=[1, 2, 200]),
        None,
        r"value 200 is out of range for DT_INT8",
    ),
    "half range": (
        _tensor(dtype=types_pb2.DT_HALF, half_val=[70000]),
        None,
        r"value 70000 is out of range for DT_HALF half_val",
    ),
    "bool content": (
        _tensor(dtype=types_pb2.DT_BOOL, tensor_content=b"\x00\x01\x05"),
        None,
        r"other than 0 and 1",
    ),
}


@pytest.mark.parametrize("case", list(BAD_TENSORS))
def test_malformed_tensor_protos(case: str) -> None:
    tp, hint, message = BAD_TENSORS[case]
    with pytest.raises(InvalidInput, match=message):
        tfs_pb.tensor_proto_to_array(tp, hint)
    with pytest.raises(InvalidInput, match=r"^input 'x': .*" + message):
        tfs_pb.tensor_proto_to_array(tp, hint, name="x")


def test_dtype_maps() -> None:
    for datatype, (dtype, _) in TF.items():
        assert tfs_pb.v2_datatype_of_tf(dtype) == datatype
        assert tfs_pb.tf_dtype_of_v2(datatype) == dtype
    with pytest.raises(InvalidInput, match=r"DT_RESOURCE is not supported"):
        tfs_pb.v2_datatype_of_tf(types_pb2.DT_RESOURCE)
    with pytest.raises(InvalidInput, match=r"unknown datatype 'STRING'"):
        tfs_pb.tf_dtype_of_v2("STRING")


# --- TF Serving: examples for Classify and Regress --------------------------------------


def example(**features: Any) -> example_pb2.Example:
    ex = example_pb2.Example()
    for key, value in features.items():
        feature = ex.features.feature[key]
        if isinstance(value, bytes):
            feature.bytes_list.value.append(value)
        elif value is None:
            pass
        elif isinstance(value, list):
            feature.float_list.value.extend(value)
        elif isinstance(value, int):
            feature.int64_list.value.append(value)
        else:
            feature.float_list.value.append(value)
    return ex


def examples(
    *rows: example_pb2.Example, context: example_pb2.Example | None = None
) -> input_pb2.Input:
    if context is None:
        return input_pb2.Input(example_list=input_pb2.ExampleList(examples=rows))
    listed = input_pb2.ExampleListWithContext(examples=rows, context=context)
    return input_pb2.Input(example_list_with_context=listed)


def test_examples_to_matrix() -> None:
    given = examples(example(a=1.5, b=2), example(b=-4, a=0.25, c=9.0))
    assert tfs_pb.examples_to_matrix(given, ["b", "a"]).tolist() == [[2.0, 1.5], [-4.0, 0.25]]
    with_context = examples(example(a=1.0), example(a=2.0, b=7), context=example(b=5.0))
    matrix = tfs_pb.examples_to_matrix(with_context, None)
    assert matrix.dtype == np.float64 and matrix.tolist() == [[1.0, 5.0], [2.0, 7.0]]


def test_examples_match_the_rest_decoder() -> None:
    rows = [{"x": 1.0, "y": 3}, {"x": 2.5, "y": -1}]
    body = orjson.dumps({"examples": rows, "context": {"z": 0.5}})
    _, rest = tfs_codec.decode_examples(body, None)
    grpc = examples(*(example(**r) for r in rows), context=example(z=0.5))
    assert tfs_pb.examples_to_matrix(grpc, None).tolist() == rest.tolist()


BAD_EXAMPLES: dict[str, tuple[input_pb2.Input, str]] = {
    "no kind": (input_pb2.Input(), r"input needs example_list or example_list_with_context"),
    "no examples": (examples(), r"input has no examples"),
    "missing": (
        examples(example(a=1.0), example(b=1.0)),
        r"examples\[0\] has no feature 'b' \(nor has 'context'\)",
    ),
    "bytes": (examples(example(a=b"x")), r"feature 'a' in examples\[0\] is a bytes_list"),
    "two values": (
        examples(example(a=[1.0, 2.0])),
        r"feature 'a' in examples\[0\] has 2 values; one is supported",
    ),
    "empty feature": (examples(example(a=None)), r"feature 'a' in examples\[0\] has no value"),
    "bad context": (
        examples(example(a=1.0), context=example(c=b"z")),
        r"feature 'c' in context is a bytes_list",
    ),
}


@pytest.mark.parametrize("case", list(BAD_EXAMPLES))
def test_malformed_examples(case: str) -> None:
    given, message = BAD_EXAMPLES[case]
    with pytest.raises(InvalidInput, match=message):
        tfs_pb.examples_to_matrix(given, None)
