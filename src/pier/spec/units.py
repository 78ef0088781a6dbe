"""Memory sizes in a spec: plain MiB numbers or Kubernetes-style strings ("512Mi", "2Gi", "1G")."""

from __future__ import annotations

import math
import re

_MIB = 1024 * 1024

#: The most memory a replica may ask for: 16 TiB, more than any one machine Pier runs on.
MAX_MEMORY_MIB = 16 * 1024 * 1024

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

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?|\.\d+)\s*([kmgt]i?)?b?\s*", re.IGNORECASE)


def parse_memory_mib(value: object) -> int:
    """A memory amount in whole MiB (rounded up); bare numbers are MiB already.

    Raises ValueError with a message fit for a spec problem.
    """
    if isinstance(value, bool):
        raise ValueError("must be a size such as 512, '512Mi' or '2Gi', not true/false")
    if isinstance(value, int):
        mib = value
    elif isinstance(value, float):
        mib = _whole_mib(value, repr(value))
    elif isinstance(value, str):
        mib = _parse_text(value)
    else:
        raise ValueError(
            f"must be a size such as 512, '512Mi' or '2Gi', not {type(value).__name__}"
        )
    if mib <= 0:
        raise ValueError("must be > 0")
    if mib > MAX_MEMORY_MIB:
        raise ValueError(f"must be at most 16Ti ({MAX_MEMORY_MIB} MiB)")
    return mib


def _parse_text(text: str) -> int:
    match = _SIZE.fullmatch(text)
    if match is None:
        raise ValueError(
            f"cannot read '{text}' as a size; write MiB as a number, or use a suffix "
            "Ki, Mi, Gi, Ti (powers of 1024) or K, M, G, T (powers of 1000)"
        )
    number, suffix = match.groups()
    if suffix is None:
        return _whole_mib(float(number), repr(text))
    size_bytes = float(number) * _FACTORS[suffix.lower()]
    return _whole_mib(size_bytes / _MIB, repr(text))


def _whole_mib(mib: float, shown: str) -> int:
    """``mib`` rounded up; a number past any real size (up to infinity) is refused, not cast."""
    if math.isnan(mib):
        raise ValueError(f"cannot read {shown} as a size")
    if mib > MAX_MEMORY_MIB:
        raise ValueError(f"must be at most 16Ti ({MAX_MEMORY_MIB} MiB)")
    if mib <= 0:
        raise ValueError("must be > 0")
    return math.ceil(mib)
