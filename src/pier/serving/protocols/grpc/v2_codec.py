"""Open Inference Protocol gRPC codec: ModelInferRequest / ModelInferResponse <-> numpy.

Pure functions on the per-request path; they import the generated message modules but
not grpc. Decoding raises ``InvalidInput`` naming the tensor at fault. Raw contents
become read-only ``np.frombuffer`` views of the message's bytes.

Choices where the protocol is silent or servers differ:

- Responses carry ``raw_output_contents`` only: tritonclient reads nothing else for
  numeric outputs.
- Typed ``contents`` must use the one list that matches the datatype; values that do not
  fit a narrow type (300 for INT8 in ``int_contents``) are an error, never wrapped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from pier.errors import InternalError, InvalidInput
from pier.serving.protocols.arrays import (
    array_from_binary,
    dims_text,
    encode_bytes_tensor,
    narrow_ints,
    object_array,
)
from pier.serving.protocols.bounds import DEFAULT_MAX_ELEMENTS, TooManyElements, element_count
from pier.serving.protocols.grpc.protos.inference import grpc_service_pb2 as oip
from pier.serving.protocols.v2_codec import RequestedOutput
from pier.serving.tensors import NUMPY_DTYPES, from_numpy_dtype, to_numpy_dtype

Array = np.ndarray[Any, Any]

_INT64_MIN, _UINT64_END = -(2**63), 2**64

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
                arr = array_from_binary(
                    raw[i], t.datatype, shape, count, f"raw_input_contents[{i}]"
                )
            else:
                arr = _from_contents(t.contents, t.datatype, shape, count)
        except (InvalidInput, TooManyElements) as exc:
            raise type(exc)(f"inputs[{i}] ('{name}'): {exc.message}") from None
        arrays[name] = arr
    parameters = _parameters(req.parameters, "request") if req.parameters else {}
    return arrays, _requested_outputs(req) if req.outputs else None, parameters


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
            f"shape {dims_text(shape)} needs {count} elements, contents.{field} has {len(values)}"
        )
    if datatype == "BYTES":
        return object_array(list(values)).reshape(shape)
    dtype = NUMPY_DTYPES[datatype]
    if dtype.itemsize < 4 and dtype.kind in "iu":
        return narrow_ints(np.array(values, dtype=np.int64), dtype, datatype).reshape(shape)
    return np.array(values, dtype=dtype).reshape(shape)


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
