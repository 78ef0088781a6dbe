"""gRPC codec: Open Inference Protocol and TF Serving protobuf messages <-> numpy.

Pure functions on the per-request path; they import the generated message modules but
not grpc. Decoding raises ``InvalidInput`` naming the tensor at fault. Raw contents
become read-only ``np.frombuffer`` views of the message's bytes.

Choices where the protocols are silent or servers differ:

- Open Inference Protocol responses carry ``raw_output_contents`` only: tritonclient reads
  nothing else for numeric outputs.
- Typed ``contents`` must use the one list that matches the datatype; values that do not
  fit a narrow type (300 for INT8 in ``int_contents``) are an error, never wrapped.
- A TensorProto's typed list holds either one value per element or a single value that
  fills the shape; any other count is an error (TensorFlow pads with the last value or
  zeros, which hides client bugs). ``tensor_content`` is not accepted for DT_STRING.
- Outputs become TensorProtos as ``tf.make_tensor_proto`` writes them: ``tensor_content``
  for numbers, ``bool_val`` for booleans and ``string_val`` for bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from pier.errors import InternalError, InvalidInput
from pier.serving.protocols.arrays import (
    bytes_items,
    decode_bytes_tensor,
    encode_bytes_tensor,
)
from pier.serving.protocols.bounds import DEFAULT_MAX_ELEMENTS, TooManyElements, element_count
from pier.serving.protocols.grpc.protos.inference import grpc_service_pb2 as oip
from pier.serving.protocols.grpc.protos.tensorflow.core.example import feature_pb2
from pier.serving.protocols.grpc.protos.tensorflow.core.framework import (
    tensor_pb2,
    tensor_shape_pb2,
    types_pb2,
)
from pier.serving.protocols.grpc.protos.tensorflow_serving.apis import input_pb2
from pier.serving.protocols.tfserving import feature_matrix
from pier.serving.protocols.v2 import RequestedOutput
from pier.serving.tensors import from_numpy_dtype, to_numpy_dtype

Array = np.ndarray[Any, Any]

_DTYPES: dict[str, np.dtype[Any]] = {
    d: to_numpy_dtype(d)
    for d in (
        *("BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64"),
        *("FP16", "FP32", "FP64"),
    )
}
_I32 = np.dtype(np.int32)
_U16 = np.dtype(np.uint16)
_INT64_MIN, _UINT64_END = -(2**63), 2**64

# --- Open Inference Protocol ----------------------------------------------------------

# datatype -> the InferTensorContents list that carries it (FP16 and BF16 have none)
_CONTENTS = {
    "BOOL": "bool_contents",
    "INT8": "int_contents",
    "INT16": "int_contents",
    "INT32": "int_contents",
    "INT64": "int64_contents",
    "UINT8": "uint_contents",
    "UINT16": "uint_contents",
    "UINT32": "uint_contents",
    "UINT64": "uint64_contents",
    "FP32": "fp32_contents",
    "FP64": "fp64_contents",
    "BYTES": "bytes_contents",
}


def infer_request_to_arrays(
    req: oip.ModelInferRequest, max_elements: int = DEFAULT_MAX_ELEMENTS
) -> tuple[dict[str, Array], list[RequestedOutput] | None, dict[str, Any]]:
    """Decode a ModelInferRequest into (inputs by name, requested outputs or None, parameters).

    A shape of more than ``max_elements`` elements is refused before anything is allocated.
    """
    raw = req.raw_input_contents
    tensors = req.inputs
    if raw and len(raw) != len(tensors):
        raise InvalidInput(
            f"request has {len(tensors)} inputs but {len(raw)} raw_input_contents; send one "
            "raw entry per input, in the order of the inputs"
        )
    arrays: dict[str, Array] = {}
    for i, t in enumerate(tensors):
        name = t.name
        if name in arrays:
            raise InvalidInput(f"inputs[{i}] ('{name}'): duplicate input name")
        try:
            shape = t.shape[:]  # a list; list(t.shape) costs three times as much
            count = element_count(shape, max_elements)
            if raw:
                if t.HasField("contents") and t.contents.ListFields():
                    raise InvalidInput(
                        "has typed contents, but the request carries raw_input_contents; "
                        "send every input one way"
                    )
                arr = _from_raw(raw[i], t.datatype, shape, count, f"raw_input_contents[{i}]")
            else:
                arr = _from_contents(t.contents, t.datatype, shape, count)
        except (InvalidInput, TooManyElements) as exc:
            raise type(exc)(f"inputs[{i}] ('{name}'): {exc.message}") from None
        arrays[name] = arr
    parameters = _parameters(req.parameters, "request") if req.parameters else {}
    return arrays, _requested_outputs(req) if req.outputs else None, parameters


def _from_raw(buf: bytes, datatype: str, shape: list[int], count: int, what: str) -> Array:
    if datatype == "BYTES":
        return decode_bytes_tensor(memoryview(buf), count).reshape(shape)
    dtype = _DTYPES.get(datatype)
    if dtype is None:
        dtype = to_numpy_dtype(datatype)  # BF16, or an error for an unknown name
    need = count * dtype.itemsize
    if len(buf) != need:
        raise InvalidInput(
            f"{what} is {len(buf)} bytes but shape {_dims(shape)} of {datatype} needs {need}"
        )
    arr = np.frombuffer(buf, dtype)
    if datatype == "BOOL" and count and bool((arr.view(np.uint8) > 1).any()):
        raise InvalidInput(f"{what} holds BOOL bytes other than 0 and 1")
    return arr.reshape(shape)


def _from_contents(
    contents: oip.InferTensorContents, datatype: str, shape: list[int], count: int
) -> Array:
    field = _CONTENTS.get(datatype)
    if field is None:
        to_numpy_dtype(datatype)  # an error for an unknown name
        raise InvalidInput(f"{datatype} has no typed contents; send it in raw_input_contents")
    given = contents.ListFields()
    values: Any = ()
    if len(given) > 1 or (given and given[0][0].name != field):
        sent = ", ".join(fd.name for fd, _ in given)
        raise InvalidInput(f"{datatype} data goes in contents.{field}, but the request sets {sent}")
    if given:
        values = given[0][1]
    elif count:
        raise InvalidInput(f"has no data: neither raw_input_contents nor contents.{field}")
    if len(values) != count:
        raise InvalidInput(
            f"shape {_dims(shape)} needs {count} elements, contents.{field} has {len(values)}"
        )
    if datatype == "BYTES":
        return _object_array(list(values)).reshape(shape)
    dtype = _DTYPES[datatype]
    if dtype.itemsize < 4 and dtype.kind in "iu":
        return _narrow(np.array(values, dtype=np.int64), dtype, datatype).reshape(shape)
    return np.array(values, dtype=dtype).reshape(shape)


def _narrow(wide: Array, dtype: np.dtype[Any], what: str) -> Array:
    if wide.size:
        info = np.iinfo(dtype)
        lo, hi = int(wide.min()), int(wide.max())
        if lo < info.min or hi > info.max:
            raise InvalidInput(f"value {lo if lo < info.min else hi} is out of range for {what}")
    return wide.astype(dtype)


def _parameters(params: Mapping[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, param in params.items():
        kind = param.WhichOneof("parameter_choice")
        if kind is None:
            raise InvalidInput(f"{where} parameter '{key}' has no value set")
        out[key] = getattr(param, kind)
    return out


def _requested_outputs(req: oip.ModelInferRequest) -> list[RequestedOutput]:
    outputs: list[RequestedOutput] = []
    seen: set[str] = set()
    for j, o in enumerate(req.outputs):
        name = o.name
        where = f"outputs[{j}] ('{name}')"
        if name in seen:
            raise InvalidInput(f"{where}: output requested twice")
        seen.add(name)
        params = _parameters(o.parameters, where) if o.parameters else {}
        top_n = params.get("classification", 0)
        if type(top_n) is not int or top_n < 0:
            raise InvalidInput(f"{where}: classification must be an int64_param >= 0")
        outputs.append(RequestedOutput(name, None, top_n, params))
    return outputs


def arrays_to_infer_response(
    model_name: str,
    model_version: str,
    request_id: str | None,
    outputs: list[tuple[str, Array]],
    parameters: dict[str, Any] | None = None,
) -> oip.ModelInferResponse:
    """Build a ModelInferResponse whose outputs travel in raw_output_contents."""
    response = oip.ModelInferResponse(
        model_name=model_name, model_version=model_version, id=request_id or ""
    )
    tensors, blobs = response.outputs, response.raw_output_contents
    for name, given in outputs:
        arr = given if given.dtype.isnative else given.astype(given.dtype.newbyteorder("="))
        try:
            datatype = from_numpy_dtype(arr.dtype)
            blob = encode_bytes_tensor(arr) if datatype == "BYTES" else arr.tobytes()
        except InvalidInput:
            raise InternalError(
                f"output '{name}' has numpy dtype {arr.dtype}, which has no V2 datatype"
            ) from None
        except InternalError as exc:
            raise InternalError(f"output '{name}': {exc.message}") from None
        tensors.add(name=name, datatype=datatype, shape=arr.shape)
        blobs.append(blob)
    for key, value in (parameters or {}).items():
        _set_parameter(response.parameters[key], key, value)
    return response


def _set_parameter(param: oip.InferParameter, key: str, value: Any) -> None:
    if type(value) is bool:
        param.bool_param = value
    elif type(value) is int and _INT64_MIN <= value < -_INT64_MIN:
        param.int64_param = value
    elif type(value) is int and 0 <= value < _UINT64_END:
        param.uint64_param = value
    elif type(value) is float:
        param.double_param = value
    elif type(value) is str:
        param.string_param = value
    else:
        raise InternalError(
            f"response parameter '{key}' is {value!r}; gRPC parameters are bool, int, float or str"
        )


# --- TF Serving -----------------------------------------------------------------------

_TF_TO_V2: dict[int, str] = {
    types_pb2.DT_FLOAT: "FP32",
    types_pb2.DT_DOUBLE: "FP64",
    types_pb2.DT_INT32: "INT32",
    types_pb2.DT_UINT8: "UINT8",
    types_pb2.DT_INT16: "INT16",
    types_pb2.DT_INT8: "INT8",
    types_pb2.DT_STRING: "BYTES",
    types_pb2.DT_INT64: "INT64",
    types_pb2.DT_BOOL: "BOOL",
    types_pb2.DT_BFLOAT16: "BF16",
    types_pb2.DT_UINT16: "UINT16",
    types_pb2.DT_HALF: "FP16",
    types_pb2.DT_UINT32: "UINT32",
    types_pb2.DT_UINT64: "UINT64",
}
_V2_TO_TF = {v: k for k, v in _TF_TO_V2.items()}
# dtype -> the TensorProto list that carries its values
_TF_VALUES: dict[int, str] = {
    types_pb2.DT_FLOAT: "float_val",
    types_pb2.DT_DOUBLE: "double_val",
    types_pb2.DT_INT32: "int_val",
    types_pb2.DT_UINT8: "int_val",
    types_pb2.DT_INT16: "int_val",
    types_pb2.DT_INT8: "int_val",
    types_pb2.DT_UINT16: "int_val",
    types_pb2.DT_STRING: "string_val",
    types_pb2.DT_INT64: "int64_val",
    types_pb2.DT_BOOL: "bool_val",
    types_pb2.DT_BFLOAT16: "half_val",
    types_pb2.DT_HALF: "half_val",
    types_pb2.DT_UINT32: "uint32_val",
    types_pb2.DT_UINT64: "uint64_val",
}
_Dim = tensor_shape_pb2.TensorShapeProto.Dim


def _tf_name(dtype: int) -> str:
    try:
        return str(types_pb2.DataType.Name(dtype))
    except ValueError:
        return f"dtype {dtype}"


def v2_datatype_of_tf(dtype: int) -> str:
    """The Open Inference Protocol datatype of a TensorFlow DataType number."""
    datatype = _TF_TO_V2.get(dtype)
    if datatype is None:
        supported = ", ".join(_tf_name(d) for d in _TF_TO_V2)
        raise InvalidInput(f"{_tf_name(dtype)} is not supported; use one of {supported}")
    return datatype


def tf_dtype_of_v2(datatype: str) -> int:
    """The TensorFlow DataType number of an Open Inference Protocol datatype."""
    dtype = _V2_TO_TF.get(datatype)
    if dtype is None:
        to_numpy_dtype(datatype)  # an error for an unknown name
        raise InvalidInput(f"datatype {datatype} has no TensorFlow dtype")
    return dtype


def tensor_proto_to_array(
    tp: tensor_pb2.TensorProto,
    datatype_hint: str | None = None,
    *,
    name: str | None = None,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> Array:
    """Decode a TensorProto; ``datatype_hint`` is the model's datatype for it, if declared.

    A dtype that differs from the hint is an error, as in TF Serving; DT_INVALID (unset)
    takes the hint. ``name`` is the input's name, for error messages. A shape of more
    than ``max_elements`` elements is refused before anything is allocated (one value
    "fills the shape", so a tiny message could otherwise ask for gigabytes).
    """
    try:
        return _tensor_to_array(tp, datatype_hint, max_elements)
    except (InvalidInput, TooManyElements) as exc:
        if name is None:
            raise
        raise type(exc)(f"input '{name}': {exc.message}") from None


def _tensor_to_array(tp: tensor_pb2.TensorProto, hint: str | None, max_elements: int) -> Array:
    dtype_enum: int = tp.dtype
    if dtype_enum == types_pb2.DT_INVALID:
        if hint is None:
            raise InvalidInput("dtype is not set")
        datatype, dtype_enum = hint, tf_dtype_of_v2(hint)
    else:
        datatype = v2_datatype_of_tf(dtype_enum)
        if hint is not None and datatype != hint:
            raise InvalidInput(
                f"dtype is {_tf_name(dtype_enum)} but the model takes {hint} "
                f"({_tf_name(_V2_TO_TF.get(hint, 0))})"
            )
    if tp.tensor_shape.unknown_rank:
        raise InvalidInput("tensor_shape has unknown_rank set; a tensor value needs its shape")
    shape = [d.size for d in tp.tensor_shape.dim]
    count = element_count(shape, max_elements)
    name = _tf_name(dtype_enum)
    if tp.tensor_content:
        if datatype == "BYTES":
            raise InvalidInput("DT_STRING values go in string_val, not tensor_content")
        return _from_raw(tp.tensor_content, datatype, shape, count, f"{name} tensor_content")
    field = _TF_VALUES[dtype_enum]
    values = getattr(tp, field)
    if len(values) != count and len(values) != 1:
        raise InvalidInput(
            f"shape {_dims(shape)} needs {count} values but {field} has {len(values)} "
            "(a single value fills the shape)"
        )
    if datatype == "BYTES":
        arr = _object_array(list(values))
    elif field == "half_val":
        bits = _narrow(np.array(values, dtype=np.int64), _U16, f"{name} half_val")
        arr = bits.view(to_numpy_dtype(datatype))
    elif field == "int_val" and datatype != "INT32":
        arr = _narrow(np.array(values, dtype=np.int64), _DTYPES[datatype], name)
    else:
        arr = np.array(values, dtype=_DTYPES[datatype])
    if len(values) != count:
        return np.full(shape, arr[0], dtype=arr.dtype)
    return arr.reshape(shape)


def array_to_tensor_proto(
    arr: Array, out: tensor_pb2.TensorProto | None = None
) -> tensor_pb2.TensorProto:
    """Encode an array as a TensorProto, into ``out`` (a fresh message) if given."""
    tp = tensor_pb2.TensorProto() if out is None else out
    if not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    try:
        datatype = from_numpy_dtype(arr.dtype)
    except InvalidInput:
        raise InternalError(f"numpy dtype {arr.dtype} has no TensorFlow dtype") from None
    tp.dtype = _V2_TO_TF[datatype]  # type: ignore[assignment]
    tp.tensor_shape.dim.extend([_Dim(size=d) for d in arr.shape])
    if datatype == "BYTES":
        tp.string_val.extend(bytes_items(arr))
    elif datatype == "BOOL":
        tp.bool_val.extend(arr.reshape(-1).tolist())
    else:
        tp.tensor_content = arr.tobytes()
    return tp


def examples_to_matrix(
    input: input_pb2.Input,  # the field's name in TF Serving's requests
    feature_names: list[str] | None,
) -> Array:
    """Decode Classify/Regress examples into a float64 matrix [examples, features].

    Rules as for REST (``tfserving.decode_examples``): context features fill in for
    examples that lack them; without ``feature_names`` the columns are the sorted
    feature names; each feature holds one number (float_list or int64_list).
    """
    kind = input.WhichOneof("kind")
    if kind == "example_list":
        examples, context = input.example_list.examples, None
    elif kind == "example_list_with_context":
        examples = input.example_list_with_context.examples
        context = input.example_list_with_context.context
    else:
        raise InvalidInput("input needs example_list or example_list_with_context")
    if not examples:
        raise InvalidInput("input has no examples; send at least one")
    shared = context.features.feature if context is not None else {}
    maps = [ex.features.feature for ex in examples]
    return feature_matrix(shared, maps, feature_names, _feature_value)


def _feature_value(feature: feature_pb2.Feature, where: str, key: str) -> float:
    kind = feature.WhichOneof("kind")
    values: Iterable[float]
    if kind == "float_list":
        values = feature.float_list.value
    elif kind == "int64_list":
        values = feature.int64_list.value
    elif kind == "bytes_list":
        raise InvalidInput(
            f"feature '{key}' in {where} is a bytes_list; only numeric features "
            "(float_list, int64_list) are supported"
        )
    else:
        raise InvalidInput(f"feature '{key}' in {where} has no value")
    items = list(values)
    if len(items) != 1:
        raise InvalidInput(f"feature '{key}' in {where} has {len(items)} values; one is supported")
    return float(items[0])


# --- helpers --------------------------------------------------------------------------


def _object_array(items: list[bytes]) -> Array:
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _dims(shape: Iterable[int]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"
