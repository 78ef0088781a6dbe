"""TF Serving gRPC codec: TensorProto and tf.Example messages <-> numpy.

Pure functions on the per-request path; they import the generated message modules but
not grpc. Decoding raises ``InvalidInput`` naming the tensor at fault.

Choices where the protocol is silent or servers differ:

- A TensorProto's typed list holds either one value per element or a single value that
  fills the shape; any other count is an error (TensorFlow pads with the last value or
  zeros, which hides client bugs). ``tensor_content`` is not accepted for DT_STRING.
- Outputs become TensorProtos as ``tf.make_tensor_proto`` writes them: ``tensor_content``
  for numbers, ``bool_val`` for booleans and ``string_val`` for bytes.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from pier.errors import InternalError, InvalidInput
from pier.serving.protocols.arrays import (
    array_from_binary,
    bytes_items,
    dims_text,
    narrow_ints,
    object_array,
)
from pier.serving.protocols.bounds import DEFAULT_MAX_ELEMENTS, TooManyElements, element_count
from pier.serving.protocols.grpc.protos.tensorflow.core.example import feature_pb2
from pier.serving.protocols.grpc.protos.tensorflow.core.framework import (
    tensor_pb2,
    tensor_shape_pb2,
    types_pb2,
)
from pier.serving.protocols.grpc.protos.tensorflow_serving.apis import input_pb2
from pier.serving.protocols.tfs_codec import feature_matrix
from pier.serving.tensors import NUMPY_DTYPES, from_numpy_dtype, to_numpy_dtype

Array = np.ndarray[Any, Any]

_U16 = np.dtype(np.uint16)

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
        return array_from_binary(
            tp.tensor_content, datatype, shape, count, f"{name} tensor_content"
        )
    field = _TF_VALUES[dtype_enum]
    values = getattr(tp, field)
    if len(values) != count and len(values) != 1:
        raise InvalidInput(
            f"shape {dims_text(shape)} needs {count} values but {field} has {len(values)} "
            "(a single value fills the shape)"
        )
    if datatype == "BYTES":
        arr = object_array(list(values))
    elif field == "half_val":
        bits = narrow_ints(np.array(values, dtype=np.int64), _U16, f"{name} half_val")
        arr = bits.view(to_numpy_dtype(datatype))
    elif field == "int_val" and datatype != "INT32":
        arr = narrow_ints(np.array(values, dtype=np.int64), NUMPY_DTYPES[datatype], name)
    else:
        arr = np.array(values, dtype=NUMPY_DTYPES[datatype])
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
