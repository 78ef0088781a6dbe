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

import base64
import binascii
import math
import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from pier.errors import InternalError, InvalidInput
from pier.serving.tensors import (
    DATATYPES_BY_DTYPE,
    NUMPY_DTYPES,
    TensorSpec,
    from_numpy_dtype,
    to_numpy_dtype,
)

Array = np.ndarray[Any, Any]

_NUMPY = orjson.OPT_SERIALIZE_NUMPY
_U32 = struct.Struct("<I")
_NO_BLOBS = memoryview(b"")
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_EXPECTED = {"BOOL": "true or false", "BYTES": "strings"}
_FLOAT_MAX = {
    "FP16": 65504.0,
    "FP32": float(np.finfo(np.float32).max),
    "BF16": 3.3895313892515355e38,
}


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


def decode_infer_request(body: bytes, header_length: int | None) -> V2Request:
    """Decode a V2 infer body; ``header_length`` is Inference-Header-Content-Length, if sent."""
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
        raise InvalidInput(f"'id' must be a string, got {_show(request_id)}")
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
            datatype, shape, count = _tensor_header(item)
            size = (
                _parameters(item, "input").get("binary_data_size") if "parameters" in item else None
            )
            if size is None:
                if "data" not in item:
                    raise InvalidInput("has neither 'data' nor parameters.binary_data_size")
                arr = array_from_json(item["data"], datatype)
                if arr.size != count:
                    raise InvalidInput(
                        f"shape {_dims(shape)} needs {count} elements, data has {arr.size}"
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
                arr = _array_from_binary(blobs[offset : offset + size], datatype, shape, count)
                offset += size
        except InvalidInput as exc:
            raise InvalidInput(f"inputs[{i}] ('{name}'): {exc.message}") from None
        inputs[name] = arr
    if offset != len(blobs):
        raise InvalidInput(
            f"{len(blobs) - offset} bytes of binary data follow the JSON but no input "
            "claims them (check each input's binary_data_size)"
        )
    outputs = _requested_outputs(doc) if "outputs" in doc else None
    return V2Request(request_id, parameters, inputs, outputs, binary_output)


def decode_raw_request(body: bytes, input_spec: TensorSpec, batched: bool) -> V2Request:
    """Decode Triton's raw binary request (header length 0): the body is one input, batch 1."""
    dims = [1, *input_spec.shape[1:]] if batched else list(input_spec.shape)
    name, datatype = input_spec.name, input_spec.datatype
    variable = [k for k, d in enumerate(dims) if d < 0]
    try:
        if len(variable) > 1:
            raise InvalidInput(
                f"shape {_dims(input_spec.shape)} has more than one variable dimension, "
                "so a raw binary request cannot say its shape; send JSON with 'shape'"
            )
        view = memoryview(body)
        items: list[bytes] = []
        if datatype == "BYTES":
            items = _split_bytes(view, None)
            count = len(items)
        else:
            itemsize = to_numpy_dtype(datatype).itemsize
            if len(view) % itemsize:
                raise InvalidInput(
                    f"{len(view)} bytes is not a whole number of {datatype} elements"
                )
            count = len(view) // itemsize
        known = math.prod(d for d in dims if d >= 0)
        if variable:
            if known == 0 or count % known:
                raise InvalidInput(f"{count} elements do not fit shape {_dims(dims)}")
            dims[variable[0]] = count // known
        elif count != known:
            raise InvalidInput(f"shape {_dims(dims)} needs {known} elements, body has {count}")
        if datatype == "BYTES":
            arr = _object_array(items).reshape(dims)
        else:
            arr = _array_from_binary(view, datatype, dims, count)
    except InvalidInput as exc:
        raise InvalidInput(f"raw binary input '{name}': {exc.message}") from None
    return V2Request(None, {}, {name: arr}, None, True)


def _tensor_header(item: dict[str, Any]) -> tuple[str, list[int], int]:
    datatype = item.get("datatype")
    if type(datatype) is not str:
        raise InvalidInput("needs a string 'datatype'")
    if datatype not in NUMPY_DTYPES:
        to_numpy_dtype(datatype)  # raises for an unknown name
    shape = item.get("shape")
    if type(shape) is not list:
        raise InvalidInput(f"'shape' must be a list of integers >= 0, got {_show(shape)}")
    for d in shape:
        if type(d) is not int or d < 0:
            raise InvalidInput(f"'shape' must be a list of integers >= 0, got {_show(shape)}")
    return datatype, shape, math.prod(shape)


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


# --- JSON and binary data -> numpy ----------------------------------------------------


def array_from_json(
    data: Any, datatype: str, *, b64: bool = False, raw: Array | None = None
) -> Array:
    """Convert JSON data (a scalar or nested lists) to an array of a V2 datatype.

    The array takes the nesting's shape. With ``b64``, BYTES elements may also be
    ``{"b64": "..."}`` objects (TF Serving). ``raw`` is ``np.asarray(data)``, when the
    caller has made it already. Errors name no tensor; callers add that.
    """
    if datatype == "BYTES":
        return _bytes_from_json(data, b64)
    dtype = NUMPY_DTYPES.get(datatype)
    if dtype is None:
        dtype = to_numpy_dtype(datatype)  # BF16, or an error for an unknown name
    if raw is None:
        try:
            raw = np.asarray(data)
        except ValueError:
            raise InvalidInput(
                "nested data is ragged (lists at one level differ in length)"
            ) from None
    kind = raw.dtype.kind
    if raw.size == 0:
        return np.empty(raw.shape, dtype)
    if datatype == "BOOL":
        if kind != "b":
            raise _wrong_kind(data, datatype)
        return raw
    if dtype.kind in "iu":
        if kind in "iu":
            return raw if raw.dtype == dtype else _narrow_ints(data, raw, dtype, datatype)
        if kind in "fO":
            return _exact_ints(data, raw.shape, dtype, datatype)
        raise _wrong_kind(data, datatype)
    if kind == "O" and _first_leaf(data, _is_number) is _ALL_OK:
        raw = _big_ints_as_floats(data, datatype)  # integers past 64 bits (TF's parser)
        kind = "f"
    if kind not in "fiu":
        raise _wrong_kind(data, datatype)
    if dtype in (raw.dtype, _F64):
        return raw.astype(dtype, copy=False)
    lo, hi = _extremes(data, raw)
    limit = _FLOAT_MAX[datatype]
    if -limit <= lo and hi <= limit:
        return raw.astype(dtype)
    try:  # values just past the limit may still round to it: let numpy decide
        with np.errstate(over="raise"):
            return raw.astype(dtype)
    except FloatingPointError:
        raise InvalidInput(
            f"value {lo if lo < -limit else hi} is out of range for {datatype}"
        ) from None


def _big_ints_as_floats(data: Any, datatype: str) -> Array:
    try:
        return np.asarray(data, dtype=_F64)
    except OverflowError:
        raise InvalidInput(f"an integer in the data is out of range for {datatype}") from None


def _extremes(data: Any, raw: Array) -> tuple[Any, Any]:
    # For a short flat list, Python's min/max cost a fraction of numpy's reductions
    # (or of np.errstate, the other way to catch an overflowing cast).
    if raw.ndim == 1 and raw.size <= 64 and type(data) is list:
        return min(data), max(data)
    return raw.min(), raw.max()


def _narrow_ints(data: Any, raw: Array, dtype: np.dtype[Any], datatype: str) -> Array:
    info = np.iinfo(dtype)
    lo, hi = _extremes(data, raw)
    if lo < info.min or hi > info.max:
        raise InvalidInput(f"value {lo if lo < info.min else hi} is out of range for {datatype}")
    return raw.astype(dtype)


def _exact_ints(data: Any, shape: tuple[int, ...], dtype: np.dtype[Any], datatype: str) -> Array:
    # Rare path: floats such as 2.0, or integers beyond int64, written for an integer tensor.
    values: list[int] = []
    for v in np.asarray(data, dtype=object).reshape(-1).tolist():
        if type(v) is int:
            values.append(v)
        elif type(v) is float and v.is_integer():
            values.append(int(v))
        else:
            raise InvalidInput(f"{datatype} data must be integers; found {_show(v)}")
    try:
        return np.array(values, dtype=dtype).reshape(shape)
    except OverflowError:
        info = np.iinfo(dtype)
        bad = next(v for v in values if not info.min <= v <= info.max)
        raise InvalidInput(f"value {bad} is out of range for {datatype}") from None


def _bytes_from_json(data: Any, b64: bool) -> Array:
    try:
        arr = np.asarray(data, dtype=object)  # ragged lists end up as elements: see below
    except ValueError:
        raise InvalidInput("nested data is ragged (lists at one level differ in length)") from None
    flat = arr.reshape(-1).tolist()
    try:
        encoded = [s.encode() for s in flat]
    except (AttributeError, UnicodeEncodeError):
        encoded = [_bytes_element(v, b64) for v in flat]
    return _object_array(encoded).reshape(arr.shape)


def _bytes_element(v: Any, b64: bool) -> bytes:
    if type(v) is str:
        try:
            return v.encode()
        except UnicodeEncodeError:
            raise InvalidInput("a string holds a lone UTF-16 surrogate") from None
    if b64 and type(v) is dict and len(v) == 1 and "b64" in v:
        try:
            return base64.b64decode(v["b64"], validate=True)
        except (binascii.Error, TypeError, ValueError):
            raise InvalidInput(f"{_show(v)} is not valid base64") from None
    if type(v) is list:
        raise InvalidInput("nested data is ragged (lists at one level differ in length)")
    raise InvalidInput(f"BYTES data must be strings; found {_show(v)}")


def _wrong_kind(data: Any, datatype: str) -> InvalidInput:
    expected = _EXPECTED.get(datatype) or (
        "integers" if datatype.startswith(("INT", "UINT")) else "numbers"
    )
    ok = (lambda v: type(v) is bool) if datatype == "BOOL" else _is_number
    bad = _first_leaf(data, ok)
    found = f"; found {_show(bad)}" if bad is not _ALL_OK else ""
    return InvalidInput(f"{datatype} data must be {expected}{found}")


_ALL_OK = object()


def _is_number(v: Any) -> bool:
    return type(v) is int or type(v) is float


def _first_leaf(data: Any, ok: Any) -> Any:
    stack = [data]
    while stack:
        v = stack.pop()
        if type(v) is list:
            stack.extend(reversed(v))
        elif not ok(v):
            return v
    return _ALL_OK


def _array_from_binary(chunk: memoryview, datatype: str, shape: list[int], count: int) -> Array:
    if datatype == "BYTES":
        return decode_bytes_tensor(chunk, count).reshape(shape)
    dtype = to_numpy_dtype(datatype)
    need = count * dtype.itemsize
    if len(chunk) != need:
        raise InvalidInput(
            f"binary data is {len(chunk)} bytes but shape {_dims(shape)} of {datatype} needs {need}"
        )
    arr = np.frombuffer(chunk, dtype=dtype)
    if datatype == "BOOL" and count and bool((arr.view(np.uint8) > 1).any()):
        raise InvalidInput("BOOL binary data holds bytes other than 0 and 1")
    return arr.reshape(shape)


def decode_bytes_tensor(buf: memoryview, count: int) -> Array:
    """Split ``count`` length-prefixed (4-byte LE) BYTES elements; the buffer must hold no more."""
    return _object_array(_split_bytes(buf, count))


def _object_array(items: list[bytes]) -> Array:
    # np.array(items, dtype=object) would be shorter, but this never nests sequences
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def _split_bytes(buf: memoryview, count: int | None) -> list[bytes]:
    items: list[bytes] = []
    pos, end = 0, len(buf)
    unpack = _U32.unpack_from
    while (len(items) < count) if count is not None else (pos < end):
        if pos + 4 > end:
            raise InvalidInput(
                f"BYTES data ends inside the length prefix of element {len(items)}"
                + (f" of {count}" if count is not None else "")
            )
        (length,) = unpack(buf, pos)
        pos += 4
        if pos + length > end:
            raise InvalidInput(
                f"BYTES element {len(items)} claims {length} bytes but {end - pos} remain"
            )
        items.append(bytes(buf[pos : pos + length]))
        pos += length
    if pos != end:
        raise InvalidInput(f"BYTES data has {end - pos} bytes left after {count} elements")
    return items


def encode_bytes_tensor(arr: Array) -> bytes:
    """Serialize a BYTES tensor (bytes or str elements) as 4-byte-LE length-prefixed elements."""
    return _pack_bytes(bytes_items(arr))


def _pack_bytes(items: list[bytes]) -> bytes:
    pack = _U32.pack
    parts: list[bytes] = []
    for b in items:
        parts.append(pack(len(b)))
        parts.append(b)
    return b"".join(parts)


def bytes_items(arr: Array) -> list[bytes]:
    """The elements of a BYTES tensor as ``bytes`` (``str`` elements are UTF-8 encoded)."""
    flat = arr.reshape(-1).tolist()
    try:
        return [x if type(x) is bytes else x.encode() for x in flat]
    except (AttributeError, UnicodeEncodeError):
        pass
    out: list[bytes] = []
    for x in flat:
        if isinstance(x, bytes | bytearray | memoryview):
            out.append(bytes(x))
        elif isinstance(x, str):
            out.append(x.encode("utf-8", "surrogatepass"))
        else:
            raise InternalError(f"BYTES tensor holds a {type(x).__name__}, not bytes or str")
    return out


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
                    blob = _pack_bytes(items)
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
    return _object_array(out).reshape((rows.shape[0], k) if batched else (k,))


def encode_error(message: str) -> bytes:
    """The V2 error body, ``{"error": message}``."""
    return orjson.dumps({"error": message})


def _datatype_name(dtype: np.dtype[Any]) -> str:
    try:
        return from_numpy_dtype(dtype)
    except InvalidInput:
        return "no V2 datatype"


def _dims(shape: Any) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def _show(v: Any) -> str:
    try:
        text = orjson.dumps(v).decode()
    except TypeError:
        text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."
