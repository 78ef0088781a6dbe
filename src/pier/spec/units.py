"""Memory sizes in a spec: plain MiB numbers or Kubernetes-style strings ("512Mi", "2Gi", "1G")."""

from __future__ import annotations

import math
import re

_MIB = 1024 * 1024

# Suffix → bytes. Binary (Ki, Mi…) and decimal (K, M…) as Kubernetes writes them; a trailing
# "B" ("MiB", "GB") is tolerated. Letters are matched case-insensitively: nobody means
# millibytes when writing "512m".
_FACTORS = {
    "k": 1000,
    "m": 1000**2,
    "g": 1000**3,
    "t": 1000**4,
    "ki": 1024,
    "mi": 1024**2,
    "gi": 1024**3,
    "ti": 1024**4,
}

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*([kmgt]i?)?b?\s*$", re.IGNORECASE)


def parse_memory_mib(value: object) -> int:
    """A memory amount in whole MiB (rounded up); bare numbers are MiB already.

    Raises ValueError with a message fit for a spec problem.
    """
    if isinstance(value, bool):
        raise ValueError("must be a size such as 512, '512Mi' or '2Gi', not true/false")
    if isinstance(value, int):
        mib = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot read {value!r} as a size")
        mib = math.ceil(value)
    elif isinstance(value, str):
        mib = _parse_text(value)
    else:
        raise ValueError(
            f"must be a size such as 512, '512Mi' or '2Gi', not {type(value).__name__}"
        )
    if mib <= 0:
        raise ValueError("must be > 0")
    return mib


def _parse_text(text: str) -> int:
    match = _SIZE.match(text)
    if match is None:
        raise ValueError(
            f"cannot read '{text}' as a size; write MiB as a number, or use a suffix "
            "Ki, Mi, Gi, Ti (powers of 1024) or K, M, G, T (powers of 1000)"
        )
    number, suffix = match.groups()
    if suffix is None:
        return math.ceil(float(number))
    size_bytes = float(number) * _FACTORS[suffix.lower()]
    return math.ceil(size_bytes / _MIB)
