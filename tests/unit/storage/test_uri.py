"""Storage URIs: parsing, canonical text, fsspec paths, joins and redaction."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pier.errors import ConfigError, StorageConfigError
from pier.storage import SCHEMES, StorageURI, parse_uri


@pytest.mark.parametrize(
    ("text", "scheme", "netloc", "path", "fs_path"),
    [
        ("s3://bucket/models/resnet/", "s3", "bucket", "models/resnet", "bucket/models/resnet"),
        ("s3://bucket", "s3", "bucket", "", "bucket"),
        ("s3a://bucket/k", "s3", "bucket", "k", "bucket/k"),
        ("s3://bucket/odd?key#1", "s3", "bucket", "odd?key#1", "bucket/odd?key#1"),
        ("gs://b/m/1", "gs", "b", "m/1", "b/m/1"),
        ("gcs://b/m", "gs", "b", "m", "b/m"),
        ("oss://b/m", "oss", "b", "m", "b/m"),
        ("hdfs://nn:8020/user/m/", "hdfs", "nn:8020", "/user/m", "/user/m"),
        ("https://h.example/m.tar.gz?x=1", "https", "h.example", "/m.tar.gz", None),
        ("file:///srv/models", "file", "", "/srv/models", "/srv/models"),
        ("file://localhost/srv/a%20b", "file", "", "/srv/a b", "/srv/a b"),
        ("/srv/models", "file", "", "/srv/models", "/srv/models"),
    ],
)
def test_parse(text: str, scheme: str, netloc: str, path: str, fs_path: str | None) -> None:
    uri = parse_uri(text)
    assert (uri.scheme, uri.netloc, uri.path) == (scheme, netloc, path)
    assert uri.scheme in SCHEMES
    assert uri.fs_path == (fs_path if fs_path is not None else text)


def test_relative_and_home_paths_become_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert parse_uri("models") == StorageURI("file", "", str(tmp_path / "models"))
    assert parse_uri(Path("models")).is_local
    assert parse_uri("~/m").path == os.path.expanduser("~/m")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ftp://h/x",
        "s3://",
        "s3:///key",
        "http:///x",
        "file://host/x",
        "hdfs:///p",
        "s3://k:s@b/x",
    ],
)
def test_invalid(text: str) -> None:
    with pytest.raises(StorageConfigError) as info:
        parse_uri(text)
    assert isinstance(info.value, ConfigError)
    assert info.value.code == "invalid_argument"


def test_unsupported_scheme_lists_supported_ones() -> None:
    with pytest.raises(StorageConfigError, match=r"unsupported storage scheme 'ftp'.*s3://"):
        parse_uri("ftp://user:hunter22@host/x")
    with pytest.raises(StorageConfigError) as info:
        parse_uri("ftp://user:hunter22@host/x")
    assert "hunter22" not in str(info.value)


def test_text_round_trips() -> None:
    for text in (
        "s3://b/m/1",
        "gs://b/m",
        "hdfs://nn:8020/m",
        "https://h/m.zip?sig=1",
        "file:///m",
    ):
        assert parse_uri(parse_uri(text).text) == parse_uri(text)


def test_name_and_join() -> None:
    uri = parse_uri("s3://b/models")
    assert uri.name == "models"
    assert uri.join("resnet", "1/") == parse_uri("s3://b/models/resnet/1")
    assert parse_uri("s3://b").join("m") == parse_uri("s3://b/m")
    assert parse_uri("/srv").join("m", "1").path == "/srv/m/1"
    with pytest.raises(StorageConfigError, match=r"'\.\.'"):
        uri.join("../other")


def test_str_and_repr_hide_credentials() -> None:
    uri = parse_uri("https://alice:hunter22@h.example/m.onnx?X-Amz-Signature=abcdef123&v=1")
    assert "hunter22" not in str(uri) and "abcdef123" not in str(uri)
    assert "hunter22" not in repr(uri) and "abcdef123" not in repr(uri)
    assert "v=1" in str(uri)
    assert "hunter22" in uri.text  # the backend still gets them
