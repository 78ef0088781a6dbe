"""Sample values per datatype that each datatype holds exactly, shared by codec tests."""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np

BF16 = np.dtype(ml_dtypes.bfloat16)

# datatype -> (numpy dtype, four values that the datatype holds exactly); BYTES as bytes
SAMPLES: dict[str, tuple[np.dtype[Any], list[Any]]] = {
    "BOOL": (np.dtype(np.bool_), [True, False, True, True]),
    "UINT8": (np.dtype(np.uint8), [0, 1, 200, 255]),
    "UINT16": (np.dtype(np.uint16), [0, 1, 40000, 65535]),
    "UINT32": (np.dtype(np.uint32), [0, 1, 3_000_000_000, 2**32 - 1]),
    "UINT64": (np.dtype(np.uint64), [0, 1, 2**63, 2**64 - 1]),
    "INT8": (np.dtype(np.int8), [-128, -1, 0, 127]),
    "INT16": (np.dtype(np.int16), [-32768, -1, 0, 32767]),
    "INT32": (np.dtype(np.int32), [-(2**31), -1, 0, 2**31 - 1]),
    "INT64": (np.dtype(np.int64), [-(2**63), -1, 0, 2**63 - 1]),
    "FP16": (np.dtype(np.float16), [0.5, -2.0, 1024.0, 0.0]),
    "FP32": (np.dtype(np.float32), [0.5, -2.25, 1e30, 0.0]),
    "FP64": (np.dtype(np.float64), [0.1, -2.5, 1e300, 0.0]),
    "BF16": (BF16, [0.5, -2.0, 1.5, 0.0]),
    "BYTES": (np.dtype(object), [b"a", b"", "héllo".encode(), b"\xff\x00"]),
}
