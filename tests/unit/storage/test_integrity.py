"""Checksums from store listings, and verification of downloads against them."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest

from pier.errors import StorageIntegrityError
from pier.storage.integrity import expected_md5, md5_file, verify_file

MD5 = hashlib.md5(b"model bytes").hexdigest()
B64 = base64.b64encode(hashlib.md5(b"model bytes").digest()).decode()


@pytest.mark.parametrize(
    ("scheme", "info", "expected"),
    [
        ("s3", {"ETag": f'"{MD5}"'}, MD5),
        ("s3", {"ETag": f'"{MD5.upper()}"'}, MD5),
        ("oss", {"etag": MD5}, MD5),
        ("s3", {"ETag": '"9b2cf535f27731c974343645a3985328-3"'}, None),  # multipart
        ("s3", {}, None),
        ("gs", {"md5Hash": B64, "etag": "CJjz8fPZ/PECEAE="}, MD5),
        ("gs", {"etag": "CJjz8fPZ/PECEAE="}, None),
        ("https", {"Content-MD5": B64, "ETag": f'"{MD5}"'}, MD5),
        ("http", {"ETag": f'"{MD5}"'}, None),  # an HTTP ETag is not a checksum
        ("http", {"Content-MD5": "not base64!"}, None),
        ("hdfs", {"ETag": MD5}, None),
    ],
)
def test_expected_md5(scheme: str, info: dict[str, str], expected: str | None) -> None:
    assert expected_md5(scheme, info) == expected


def test_verify(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"model bytes")
    assert md5_file(path) == MD5
    verify_file(path, label="s3://b/model.onnx", md5=MD5, size=11)
    verify_file(path, label="s3://b/model.onnx")


def test_checksum_mismatch_names_the_uri(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"model bytez")  # corrupted in transit
    with pytest.raises(
        StorageIntegrityError, match=r"s3://b/model.onnx: checksum mismatch"
    ) as info:
        verify_file(path, label="s3://b/model.onnx", md5=MD5, size=11)
    assert info.value.code == "data_loss"
    assert info.value.uri == "s3://b/model.onnx"


def test_size_mismatch(tmp_path: Path) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"model")
    with pytest.raises(StorageIntegrityError, match="downloaded 5 bytes, the store listed 11"):
        verify_file(path, label="s3://b/model.onnx", md5=MD5, size=11)
