"""Bounds on the numbers a request carries: model versions, tensor shapes, element counts.

Every protocol (REST and gRPC, V2 and TF Serving) checks these before it allocates, so a
small request can never make the server build a huge array, and a number that does not
fit is a clear client error, never a 500.
"""

from __future__ import annotations

from collections.abc import Sequence

from pier.errors import InvalidInput, PayloadTooLarge

#: ``ServerSettings.max_elements``'s default (a unit test pins that the two agree).
DEFAULT_MAX_ELEMENTS = 2**24
#: Most dimensions a tensor may have: numpy 1.x's own limit; no model takes more.
MAX_RANK = 32
#: Versions are int64 in every protocol (TF Serving's Int64Value, Triton's version policy).
MAX_VERSION = 2**63 - 1
_MAX_VERSION_DIGITS = len(str(MAX_VERSION))


class TooManyElements(PayloadTooLarge):
    """A tensor whose element count is over the server's ``max_elements`` setting.

    A PayloadTooLarge: HTTP 413 and gRPC RESOURCE_EXHAUSTED. The request is well formed
    but asks for more than this server will hold; retrying it will not help.
    """


def parse_version(text: str) -> int:
    """A model version from a URL path or a string field: ASCII digits, 1 to 2**63-1.

    ``str.isdigit`` is true for "²" and Arabic-Indic digits too; only ASCII digits are a version here.
    """
    if not (text.isascii() and text.isdigit()):
        raise InvalidInput(f"version '{_shown(text)}' is not a positive integer")
    if len(text) > _MAX_VERSION_DIGITS or not 1 <= int(text) <= MAX_VERSION:
        raise InvalidInput(
            f"version '{_shown(text)}' is out of range; versions are 1 to {MAX_VERSION}"
        )
    return int(text)


def check_version(version: int) -> int:
    """A model version given as a number (gRPC Int64Value): 1 to 2**63-1."""
    if not 1 <= version <= MAX_VERSION:
        raise InvalidInput(f"version {version} is out of range; versions are 1 to {MAX_VERSION}")
    return version


def _shown(text: str) -> str:
    return text if len(text) <= 40 else text[:37] + "..."


def element_count(shape: Sequence[int], max_elements: int) -> int:
    """The element count of a request's shape, checked before anything is allocated.

    Refuses a negative dimension or more than MAX_RANK of them (InvalidInput), an empty
    shape whose other dimensions no array could hold, such as [0, 2**62] (InvalidInput:
    numpy raises "array is too big" for it), and more than ``max_elements`` elements
    (TooManyElements).
    """
    if len(shape) > MAX_RANK:
        raise InvalidInput(f"shape has {len(shape)} dimensions; at most {MAX_RANK} are accepted")
    count = 1
    span = 1  # the product of the non-zero dimensions
    for d in shape:
        if d < 0:
            raise InvalidInput(f"shape {dims_text(shape)} has a negative dimension")
        if d:
            span *= d
        count *= d
    if span > max_elements:
        if count == 0:
            raise InvalidInput(
                f"shape {dims_text(shape)} is empty, but its other dimensions span {span} "
                f"elements, over the limit of {max_elements}; no array has that shape"
            )
        raise TooManyElements(
            f"shape {dims_text(shape)} has {count} elements, over the server's limit of "
            f"{max_elements} (setting max_elements)"
        )
    return count


def check_count(count: int, max_elements: int) -> None:
    """Refuse an element count (known before allocating) over ``max_elements``."""
    if count > max_elements:
        raise TooManyElements(
            f"the data holds {count} elements, over the server's limit of {max_elements} "
            "(setting max_elements)"
        )


def dims_text(shape: Sequence[int]) -> str:
    text = "[" + ",".join(str(d) for d in shape) + "]"
    return text if len(text) <= 80 else text[:77] + "...]"
