"""Tensor datatypes: Open Inference Protocol names, numpy dtypes, and tensor specs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from pier.errors import InvalidInput

# V2 datatype name -> numpy dtype. BYTES is an object array of ``bytes``; BF16 needs
# ml_dtypes (installed with the onnx extra) and is resolved lazily.
_NUMPY: dict[str, np.dtype[Any]] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(np.object_),
}

DATATYPES = (*_NUMPY.keys(), "BF16")

_BY_DTYPE: dict[np.dtype[Any], str] = {dt: name for name, dt in _NUMPY.items()}
for _extra, _name in ((np.dtype("U"), "BYTES"), (np.dtype("S"), "BYTES")):
    _BY_DTYPE.setdefault(_extra, _name)

# The tables, typed read-only, for per-request code, where a dict lookup is cheaper than
# a function call. Neither holds BF16: on a miss, call to_numpy_dtype or from_numpy_dtype,
# which also raise the errors.
NUMPY_DTYPES: Mapping[str, np.dtype[Any]] = _NUMPY
DATATYPES_BY_DTYPE: Mapping[np.dtype[Any], str] = _BY_DTYPE


def _bf16() -> np.dtype[Any]:
    try:
        import ml_dtypes
    except ImportError as exc:  # pragma: no cover - ml_dtypes ships with the onnx extra
        raise InvalidInput(
            "BF16 tensors need the ml_dtypes package (pip install ml_dtypes)"
        ) from exc
    dtype: np.dtype[Any] = np.dtype(ml_dtypes.bfloat16)
    return dtype


def to_numpy_dtype(datatype: str) -> np.dtype[Any]:
    """Return the numpy dtype for a V2 datatype name, or raise InvalidInput."""
    dt = _NUMPY.get(datatype)
    if dt is not None:
        return dt
    if datatype == "BF16":
        return _bf16()
    raise InvalidInput(f"unknown datatype '{datatype}'; expected one of {', '.join(DATATYPES)}")


def from_numpy_dtype(dtype: np.dtype[Any]) -> str:
    """Return the V2 datatype name for a numpy dtype, or raise InvalidInput."""
    name = _BY_DTYPE.get(dtype)
    if name is not None:
        return name
    if dtype.kind in "USO":
        return "BYTES"
    if dtype.name == "bfloat16":
        return "BF16"
    raise InvalidInput(f"numpy dtype '{dtype}' has no Open Inference Protocol datatype")


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """Name, V2 datatype and shape of a model input or output; -1 marks a variable dim."""

    name: str
    datatype: str
    shape: tuple[int, ...]

    def as_json(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}


def shape_matches(expected: tuple[int, ...], actual: tuple[int, ...]) -> bool:
    """True when ``actual`` fits ``expected``, where -1 in ``expected`` matches any size."""
    if len(expected) != len(actual):
        return False
    # A plain loop: all() over a generator costs a microsecond on this hot path.
    for e, a in zip(expected, actual):  # noqa: B905, SIM110 - lengths checked above
        if e not in (-1, a):
            return False
    return True


def as_bytes_array(values: Any) -> np.ndarray[Any, np.dtype[np.object_]]:
    """Turn strings or bytes (any nesting) into an object array of ``bytes``."""
    arr = np.asarray(values, dtype=object)
    flat = arr.reshape(-1)
    for i, v in enumerate(flat):
        if isinstance(v, str):
            flat[i] = v.encode("utf-8")
        elif isinstance(v, bytes | bytearray | memoryview):
            flat[i] = bytes(v)
        elif isinstance(v, np.str_ | np.bytes_):
            flat[i] = v.encode("utf-8") if isinstance(v, np.str_) else bytes(v)
        else:
            raise InvalidInput(f"BYTES element {i} is {type(v).__name__}, expected a string")
    return arr
