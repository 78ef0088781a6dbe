"""Open Inference Protocol (KServe V2 / Triton) REST codec: request and response bodies <-> numpy.

Pure functions on the per-request path. Decoding checks the JSON and raises
``InvalidInput`` naming the tensor at fault. Numeric JSON data becomes numpy with one
``np.asarray`` call; binary data becomes a zero-copy, read-only ``np.frombuffer`` view of
the body, so those arrays are not writeable.

Choices where the protocol is silent or servers differ:

- FP16 and BF16 are accepted and written as JSON numbers (Triton refuses both in JSON).
- In JSON, integer-valued numbers are accepted for float tensors and floats with no
  fractional part (``2.0``) for integer tensors; a value that does not fit the datatype
  (``300`` for UINT8, ``1e300`` for FP32) is an error, never wrapped or made infinite.
- Non-finite floats are written as JSON ``null``: JSON has no NaN, and orjson writes null.
- A BYTES output asked for as JSON whose elements are not all valid UTF-8 goes out as
  binary data instead (Triton would emit invalid JSON); V2 clients read either form.
- ``"outputs": []`` means all outputs, as in Triton.
- Classification values are printed as Triton prints them (C++ ``std::to_string``):
  ``"%f"`` for floats, plain digits for integers. Equal values keep the lower index first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from pier.errors import InternalError, InvalidInput
from pier.serving.protocols.arrays import (
    array_from_binary,
    array_from_json,
    bytes_items,
    dims_text,
    object_array,
    pack_bytes,
    show_value,
    split_bytes,
)
from pier.serving.protocols.bounds import (
    DEFAULT_MAX_ELEMENTS,
    TooManyElements,
    check_count,
    element_count,
)
from pier.serving.tensors import (
    DATATYPES_BY_DTYPE,
    NUMPY_DTYPES,
    TensorSpec,
    from_numpy_dtype,
    to_numpy_dtype,
)

Array = np.ndarray[Any, Any]

_NUMPY = orjson.OPT_SERIALIZE_NUMPY
_NO_BLOBS = memoryview(b"")
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)


@dataclass(slots=True)
class RequestedOutput:
    """One entry of a request's ``outputs`` list."""

    name: str
    binary: bool | None  # per-output "binary_data"; None when absent
    classification: int  # 0 = plain tensor; N = top-N classification
    parameters: dict[str, Any]


@dataclass(slots=True)
class V2Request:
    """A decoded inference request; ``outputs`` is None when every output is wanted."""

    id: str | None
    parameters: dict[str, Any]
    inputs: dict[str, Array]  # in request order; BYTES -> object array of bytes
    outputs: list[RequestedOutput] | None
    binary_output: bool  # request-level "binary_data_output"


# --- requests -------------------------------------------------------------------------


def decode_infer_request(
    body: bytes, header_length: int | None, max_elements: int = DEFAULT_MAX_ELEMENTS
) -> V2Request:
    """Decode a V2 infer body; ``header_length`` is Inference-Header-Content-Length, if sent.

    A tensor whose shape holds more than ``max_elements`` elements is refused before its
    data is read.
    """
    if header_length is None:
        header: bytes | memoryview = body
        blobs = _NO_BLOBS
    elif header_length == 0:
        raise InvalidInput(
            "Inference-Header-Content-Length is 0: a raw binary request has no JSON and "
            "must be decoded against the model's single input"
        )
    elif not 0 < header_length <= len(body):
        raise InvalidInput(
            f"Inference-Header-Content-Length is {header_length} but the body has {len(body)} bytes"
        )
    else:
        view = memoryview(body)
        header, blobs = view[:header_length], view[header_length:]
    try:
        doc = orjson.loads(header)
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"request body is not valid JSON: {exc}") from None
    if type(doc) is not dict:
        raise InvalidInput("request body must be a JSON object")

    request_id = doc.get("id")
    if request_id is not None and type(request_id) is not str:
        raise InvalidInput(f"'id' must be a string, got {show_value(request_id)}")
    # Most requests carry no parameters anywhere: skip the helpers then (hot path).
    parameters = _parameters(doc, "request") if "parameters" in doc else {}
    binary_output = parameters.get("binary_data_output", False)
    if type(binary_output) is not bool:
        raise InvalidInput("parameters.binary_data_output must be true or false")

    items = doc.get("inputs")
    if type(items) is not list:
        raise InvalidInput("request needs 'inputs', a list of tensors")
    inputs: dict[str, Array] = {}
    offset = 0
    for i, item in enumerate(items):
        if type(item) is not dict:
            raise InvalidInput(f"inputs[{i}] must be an object")
        name = item.get("name")
        if type(name) is not str:
            raise InvalidInput(f"inputs[{i}] needs a string 'name'")
        if name in inputs:
            raise InvalidInput(f"inputs[{i}] ('{name}'): duplicate input name")
        try:
            datatype, shape, count = _tensor_header(item, max_elements)
            size = (
                _parameters(item, "input").get("binary_data_size") if "parameters" in item else None
            )
            if size is None:
                if "data" not in item:
                    raise InvalidInput("has neither 'data' nor parameters.binary_data_size")
                arr = array_from_json(item["data"], datatype, max_elements=max_elements)
                if arr.size != count:
                    raise InvalidInput(
                        f"shape {dims_text(shape)} needs {count} elements, data has {arr.size}"
                    )
                if arr.ndim != 1 or len(shape) != 1:  # flat data for a 1-D shape fits already
                    arr = arr.reshape(shape)
            else:
                if type(size) is not int or size < 0:
                    raise InvalidInput("parameters.binary_data_size must be an integer >= 0")
                if "data" in item:
                    raise InvalidInput("has both 'data' and parameters.binary_data_size")
                if header_length is None:
                    raise InvalidInput(
                        "has binary_data_size but the request has no "
                        "Inference-Header-Content-Length header"
                    )
                if offset + size > len(blobs):
                    raise InvalidInput(
                        f"binary_data_size is {size} but only {len(blobs) - offset} bytes "
                        "of binary data are left"
                    )
                arr = array_from_binary(blobs[offset : offset + size], datatype, shape, count)
                offset += size
        except (InvalidInput, TooManyElements) as exc:
            raise type(exc)(f"inputs[{i}] ('{name}'): {exc.message}") from None
        inputs[name] = arr
    if offset != len(blobs):
        raise InvalidInput(
            f"{len(blobs) - offset} bytes of binary data follow the JSON but no input "
            "claims them (check each input's binary_data_size)"
        )
    outputs = _requested_outputs(doc) if "outputs" in doc else None
    return V2Request(request_id, parameters, inputs, outputs, binary_output)


def decode_raw_request(
    body: bytes,
    input_spec: TensorSpec,
    batched: bool,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> V2Request:
    """Decode Triton's raw binary request (header length 0): the body is one input, batch 1."""
    dims = [1, *input_spec.shape[1:]] if batched else list(input_spec.shape)
    name, datatype = input_spec.name, input_spec.datatype
    variable = [k for k, d in enumerate(dims) if d < 0]
    try:
        if len(variable) > 1:
            raise InvalidInput(
                f"shape {dims_text(input_spec.shape)} has more than one variable dimension, "
                "so a raw binary request cannot say its shape; send JSON with 'shape'"
            )
        view = memoryview(body)
        items: list[bytes] = []
        if datatype == "BYTES":
            items = split_bytes(view, None)
            count = len(items)
        else:
            itemsize = to_numpy_dtype(datatype).itemsize
            if len(view) % itemsize:
                raise InvalidInput(
                    f"{len(view)} bytes is not a whole number of {datatype} elements"
                )
            count = len(view) // itemsize
        check_count(count, max_elements)
        known = math.prod(d for d in dims if d >= 0)
        if variable:
            if known == 0 or count % known:
                raise InvalidInput(f"{count} elements do not fit shape {dims_text(dims)}")
            dims[variable[0]] = count // known
        elif count != known:
            raise InvalidInput(f"shape {dims_text(dims)} needs {known} elements, body has {count}")
        if datatype == "BYTES":
            arr = object_array(items).reshape(dims)
        else:
            arr = array_from_binary(view, datatype, dims, count)
    except (InvalidInput, TooManyElements) as exc:
        raise type(exc)(f"raw binary input '{name}': {exc.message}") from None
    return V2Request(None, {}, {name: arr}, None, True)


def _tensor_header(item: dict[str, Any], max_elements: int) -> tuple[str, list[int], int]:
    datatype = item.get("datatype")
    if type(datatype) is not str:
        raise InvalidInput("needs a string 'datatype'")
    if datatype not in NUMPY_DTYPES:
        to_numpy_dtype(datatype)  # raises for an unknown name
    shape = item.get("shape")
    if type(shape) is not list:
        raise InvalidInput(f"'shape' must be a list of integers >= 0, got {show_value(shape)}")
    for d in shape:
        if type(d) is not int or d < 0:
            raise InvalidInput(f"'shape' must be a list of integers >= 0, got {show_value(shape)}")
    return datatype, shape, element_count(shape, max_elements)


def _parameters(obj: dict[str, Any], what: str) -> dict[str, Any]:
    params = obj.get("parameters")
    if params is None:
        return {}
    if type(params) is not dict:
        raise InvalidInput(f"{what} 'parameters' must be an object")
    return params


def _requested_outputs(doc: dict[str, Any]) -> list[RequestedOutput] | None:
    items = doc.get("outputs")
    if items is None:
        return None
    if type(items) is not list:
        raise InvalidInput("'outputs' must be a list")
    outputs: list[RequestedOutput] = []
    seen: set[str] = set()
    for j, item in enumerate(items):
        if type(item) is not dict or type(item.get("name")) is not str:
            raise InvalidInput(f"outputs[{j}] must be an object with a string 'name'")
        name = item["name"]
        if name in seen:
            raise InvalidInput(f"outputs[{j}] ('{name}'): output requested twice")
        seen.add(name)
        params = _parameters(item, f"outputs[{j}] ('{name}')")
        binary = params.get("binary_data")
        if binary is not None and type(binary) is not bool:
            raise InvalidInput(f"outputs[{j}] ('{name}'): binary_data must be true or false")
        top_n = params.get("classification", 0)
        if type(top_n) is not int or top_n < 0:
            raise InvalidInput(f"outputs[{j}] ('{name}'): classification must be an integer >= 0")
        outputs.append(RequestedOutput(name, binary, top_n, params))
    return outputs or None


# --- responses ------------------------------------------------------------------------


def encode_infer_response(
    model_name: str,
    model_version: str,
    request_id: str | None,
    outputs: list[tuple[str, Array, bool]],
    parameters: dict[str, Any] | None = None,
) -> tuple[bytes, int | None]:
    """Build a response body from (name, array, as_binary) outputs.

    Returns the body and the JSON header length, which is None when no output is binary.
    """
    entries: list[dict[str, Any]] = []
    blobs: list[bytes] = []
    for name, given, as_binary in outputs:
        arr = given if given.dtype.isnative else given.astype(given.dtype.newbyteorder("="))
        binary = as_binary
        try:
            datatype = DATATYPES_BY_DTYPE.get(arr.dtype) or from_numpy_dtype(arr.dtype)
            entry: dict[str, Any] = {"name": name, "datatype": datatype, "shape": arr.shape}
            blob: bytes | None = None
            if datatype == "BYTES":
                items = bytes_items(arr)
                if not binary:
                    try:
                        entry["data"] = [b.decode() for b in items]
                    except UnicodeDecodeError:
                        binary = True  # not representable as JSON text; send it exactly
                if binary:
                    blob = pack_bytes(items)
            elif binary:
                blob = arr.tobytes()
            else:
                flat = arr.ravel()  # C-contiguous (copied only if it must be): orjson needs that
                entry["data"] = flat.astype(_F32) if datatype == "BF16" else flat
        except InvalidInput:
            raise InternalError(
                f"output '{name}' has numpy dtype {arr.dtype}, which has no V2 datatype"
            ) from None
        except InternalError as exc:
            raise InternalError(f"output '{name}': {exc.message}") from None
        if blob is not None:
            entry["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        entries.append(entry)
    doc: dict[str, Any] = {"model_name": model_name, "model_version": model_version}
    if request_id is not None:
        doc["id"] = request_id
    if parameters:
        doc["parameters"] = parameters
    doc["outputs"] = entries
    header = orjson.dumps(doc, option=_NUMPY)
    if not blobs:
        return header, None
    return b"".join([header, *blobs]), len(header)


def classify_output(
    array: Array,
    top_n: int,
    labels: list[str] | None,
    batched: bool,
    *,
    name: str = "output",
) -> Array:
    """Top-N classification of an output: BYTES "<value>:<index>[:<label>]", highest first.

    The result has shape [batch, min(N, elements)], or [min(N, elements)] if not batched.
    """
    where = f"output '{name}'"
    if top_n < 1:
        raise InvalidInput(f"{where}: classification count must be >= 1, got {top_n}")
    dtype = array.dtype
    if dtype.kind not in "iuf" and not (dtype.kind == "V" and dtype.name == "bfloat16"):
        raise InvalidInput(
            f"{where}: classification needs an integer or floating-point output, "
            f"not {dtype} ({_datatype_name(dtype)})"
        )
    if batched and array.ndim == 0:
        raise InternalError(f"{where} is batched but has no batch dimension")
    width = math.prod(array.shape[1:]) if batched else array.size
    rows = array.reshape(array.shape[0] if batched else 1, width)
    k = min(top_n, width)
    if dtype.kind in "iu":
        # Stable descending order without negation (which would overflow integers).
        order = (width - 1) - np.argsort(rows[:, ::-1], axis=1, kind="stable")[:, ::-1]
        fmt = "{}:{}"
    else:
        rows = rows.astype(_F64)
        order = np.argsort(-rows, axis=1, kind="stable")  # NaN sorts last
        fmt = "{:f}:{}"
    order = order[:, :k]
    values = np.take_along_axis(rows, order, axis=1).tolist()
    names = labels or []
    out: list[bytes] = []
    for row_values, row_order in zip(values, order.tolist(), strict=True):
        for v, idx in zip(row_values, row_order, strict=True):
            text = fmt.format(v, idx)
            if idx < len(names) and names[idx]:
                text = f"{text}:{names[idx]}"
            out.append(text.encode())
    return object_array(out).reshape((rows.shape[0], k) if batched else (k,))


def classified(
    outputs: dict[str, Array],
    requested: list[RequestedOutput],
    labels: list[str] | None,
    batched: bool,
) -> list[tuple[RequestedOutput, Array]]:
    """Each requested output, with top-N classification applied where the request asked."""
    result = []
    for ro in requested:
        arr = outputs[ro.name]
        if ro.classification:
            arr = classify_output(arr, ro.classification, labels, batched, name=ro.name)
        result.append((ro, arr))
    return result


def encode_error(message: str) -> bytes:
    """The V2 error body, ``{"error": message}``."""
    return orjson.dumps({"error": message})


def _datatype_name(dtype: np.dtype[Any]) -> str:
    try:
        return from_numpy_dtype(dtype)
    except InvalidInput:
        return "no V2 datatype"
