"""Checksums the stores publish, and verification of downloaded files against them."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pier.errors import StorageIntegrityError

_HEX_MD5 = re.compile(r"[0-9a-f]{32}")


def expected_md5(scheme: str, info: Mapping[str, Any]) -> str | None:
    """The MD5 (hex) the store vouches for, or None where it gives none we can trust.

    S3 and OSS: a single-part upload's ETag is the MD5 of the object; a multipart ETag
    (``<hash>-<parts>``) is not, and is skipped. GCS: ``md5Hash`` (base64). HTTP:
    ``Content-MD5`` (base64) only, since servers make ETags up as they like.
    """
    if scheme in ("s3", "oss"):
        etag = str(info.get("ETag") or info.get("etag") or "").strip().strip('"').lower()
        return etag if _HEX_MD5.fullmatch(etag) else None
    if scheme == "gs":
        return _b64_to_hex(info.get("md5Hash"))
    if scheme in ("http", "https"):
        return _b64_to_hex(info.get("Content-MD5"))
    return None


def _b64_to_hex(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw.hex() if len(raw) == 16 else None


def md5_file(path: Path, chunk: int = 1 << 20) -> str:
    """The MD5 of a file, hex."""
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: Path, *, label: str, md5: str | None = None, size: int | None = None) -> None:
    """Raise ``StorageIntegrityError`` if ``path`` does not have the expected size or MD5."""
    actual_size = path.stat().st_size
    if size is not None and actual_size != size:
        raise StorageIntegrityError(
            f"{label}: downloaded {actual_size} bytes, the store listed {size}; "
            "the object changed during the download or the transfer was cut",
            uri=label,
            cause="size mismatch",
        )
    if md5 is not None:
        actual = md5_file(path)
        if actual != md5:
            raise StorageIntegrityError(
                f"{label}: checksum mismatch: MD5 of the download is {actual}, "
                f"the store published {md5}",
                uri=label,
                cause="checksum mismatch",
            )
