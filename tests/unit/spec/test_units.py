"""Memory sizes: MiB numbers and Kubernetes-style strings."""

from __future__ import annotations

import pytest

from pier.spec import parse_memory_mib


@pytest.mark.parametrize(
    ("value", "mib"),
    [
        (512, 512),
        (1000.2, 1001),
        ("512", 512),
        ("512Mi", 512),
        ("512MiB", 512),
        ("2Gi", 2048),
        ("1.5Gi", 1536),
        ("1Ti", 1024 * 1024),
        ("2048Ki", 2),
        ("1G", 954),  # 10**9 bytes, rounded up to whole MiB
        ("1000M", 954),
        ("1GB", 954),
        ("64k", 1),
        (" 256 mi ", 256),
    ],
)
def test_sizes(value: object, mib: int) -> None:
    assert parse_memory_mib(value) == mib


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("12 giga", "cannot read '12 giga' as a size"),
        ("Gi", "cannot read 'Gi'"),
        ("-1Gi", "cannot read '-1Gi'"),
        ("", "cannot read ''"),
        (0, "must be > 0"),
        (-5, "must be > 0"),
        (True, "not true/false"),
        ([1], "not list"),
        (float("nan"), "cannot read nan"),
    ],
)
def test_bad_sizes(value: object, fragment: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_memory_mib(value)
    assert fragment in str(info.value)
