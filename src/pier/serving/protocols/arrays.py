"""Tensor data between JSON or binary bytes and numpy, for every protocol codec.

Numeric JSON data becomes numpy with one ``np.asarray`` call, checked so that a value that
does not fit the datatype is an error, never wrapped. Binary data (little-endian,
row-major; BYTES as 4-byte length + bytes per element) becomes a read-only
``np.frombuffer`` view. Used by the V2 and TF Serving codecs, REST and gRPC alike.
"""

from __future__ import annotations

import base64
import binascii
import struct
from typing import Any

import numpy as np
import orjson

from pier.errors import InternalError, InvalidInput
from pier.serving.protocols.bounds import DEFAULT_MAX_ELEMENTS, MAX_RANK, check_count
from pier.serving.tensors import (
    NUMPY_DTYPES,
    to_numpy_dtype,
)

Array = np.ndarray[Any, Any]

_U32 = struct.Struct("<I")
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_EXPECTED = {"BOOL": "true or false", "BYTES": "strings"}
_FLOAT_MAX = {
    "FP16": 65504.0,
    "FP32": float(np.finfo(np.float32).max),
    "BF16": 3.3895313892515355e38,
}


def array_from_json(
    data: Any,
    datatype: str,
    *,
    b64: bool = False,
    raw: Array | None = None,
    max_elements: int = DEFAULT_MAX_ELEMENTS,
) -> Array:
    """Convert JSON data (a scalar or nested lists) to an array of a V2 datatype.

    The array takes the nesting's shape. With ``b64``, BYTES elements may also be
    ``{"b64": "..."}`` objects (TF Serving). ``raw`` is ``np.asarray(data)``, when the
    caller has made it already (and checked the data with ``check_nesting``). Errors name
    no tensor; callers add that.
    """
    if raw is None:
        check_nesting(data, max_elements)
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


def check_nesting(data: Any, max_elements: int) -> None:
    """Refuse nested lists deeper than MAX_RANK, or holding more than ``max_elements``.

    Walks the first element of each level only (what numpy's shape would be), so it costs
    as many steps as the data has dimensions; ragged data is left for numpy to refuse.
    """
    count, depth = 1, 0
    v = data
    while type(v) is list:
        depth += 1
        if depth > MAX_RANK:
            raise InvalidInput(f"data is nested more than {MAX_RANK} lists deep")
        count *= len(v)
        if not v:
            return
        v = v[0]
    check_count(count, max_elements)


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
            raise InvalidInput(f"{datatype} data must be integers; found {show_value(v)}")
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
    return object_array(encoded).reshape(arr.shape)


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
            raise InvalidInput(f"{show_value(v)} is not valid base64") from None
    if type(v) is list:
        raise InvalidInput("nested data is ragged (lists at one level differ in length)")
    raise InvalidInput(f"BYTES data must be strings; found {show_value(v)}")


def _wrong_kind(data: Any, datatype: str) -> InvalidInput:
    expected = _EXPECTED.get(datatype) or (
        "integers" if datatype.startswith(("INT", "UINT")) else "numbers"
    )
    ok = (lambda v: type(v) is bool) if datatype == "BOOL" else _is_number
    bad = _first_leaf(data, ok)
    found = f"; found {show_value(bad)}" if bad is not _ALL_OK else ""
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


def array_from_binary(
    chunk: bytes | memoryview,
    datatype: str,
    shape: list[int],
    count: int,
    what: str = "binary data",
) -> Array:
    """A read-only view of fixed-size elements (or BYTES items) as ``shape``; ``what`` names it."""
    if datatype == "BYTES":
        return decode_bytes_tensor(memoryview(chunk), count).reshape(shape)
    dtype = NUMPY_DTYPES.get(datatype)
    if dtype is None:
        dtype = to_numpy_dtype(datatype)  # BF16, or an error for an unknown name
    need = count * dtype.itemsize
    if len(chunk) != need:
        raise InvalidInput(
            f"{what} is {len(chunk)} bytes but shape {dims_text(shape)} of {datatype} needs {need}"
        )
    arr = np.frombuffer(chunk, dtype=dtype)
    if datatype == "BOOL" and count and bool((arr.view(np.uint8) > 1).any()):
        raise InvalidInput(f"BOOL {what} holds bytes other than 0 and 1")
    return arr.reshape(shape)


def decode_bytes_tensor(buf: memoryview, count: int) -> Array:
    """Split ``count`` length-prefixed (4-byte LE) BYTES elements; the buffer must hold no more."""
    return object_array(split_bytes(buf, count))


def narrow_ints(wide: Array, dtype: np.dtype[Any], what: str) -> Array:
    """``wide`` (int64) as ``dtype``, refusing values that do not fit; ``what`` names it."""
    if wide.size:
        info = np.iinfo(dtype)
        lo, hi = int(wide.min()), int(wide.max())
        if lo < info.min or hi > info.max:
            raise InvalidInput(f"value {lo if lo < info.min else hi} is out of range for {what}")
    return wide.astype(dtype)


def object_array(items: list[bytes]) -> Array:
    # np.array(items, dtype=object) would be shorter, but this never nests sequences
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out


def split_bytes(buf: memoryview, count: int | None) -> list[bytes]:
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
    return pack_bytes(bytes_items(arr))


def pack_bytes(items: list[bytes]) -> bytes:
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


def dims_text(shape: Any) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def show_value(v: Any) -> str:
    try:
        text = orjson.dumps(v).decode()
    except TypeError:
        text = repr(v)
    return text if len(text) <= 40 else text[:37] + "..."
