"""Remote helpers, push and the cache on local paths and file:// URIs (no network)."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

from pier.errors import StorageBackendMissing, StorageConfigError, StorageNotFound, Unsupported
from pier.storage import (
    ModelCache,
    exists,
    identity,
    list_dirs,
    ls,
    open_filesystem,
    push,
    read_bytes,
    tree,
)


def write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "models"
    write(root / "resnet" / "1" / "model.onnx", b"one")
    write(root / "resnet" / "2" / "model.onnx", b"two")
    write(root / "resnet" / "config.json", b"{}")
    return root


def test_list_dirs_read_exists(repo: Path) -> None:
    uri = f"file://{repo}/resnet"
    assert list_dirs(uri) == ["1", "2"]
    assert list_dirs(repo / "resnet") == ["1", "2"]
    assert read_bytes(f"{uri}/config.json") == b"{}"
    assert read_bytes(f"{uri}/missing.json") is None
    assert exists(uri) and exists(f"{uri}/1/model.onnx")
    assert not exists(f"{uri}/3")
    with pytest.raises(StorageNotFound, match=r"file://.*/resnet/3: listing failed: not found"):
        list_dirs(f"{uri}/3")


def test_ls(repo: Path) -> None:
    entries = ls(repo / "resnet")
    assert [(e.name, e.is_dir) for e in entries] == [
        ("1", True),
        ("2", True),
        ("config.json", False),
    ]
    assert entries[2].size == 2 and entries[2].modified is not None
    (single,) = ls(repo / "resnet" / "config.json")
    assert (single.name, single.size, single.is_dir) == ("config.json", 2, False)


def test_tree_and_identity_follow_changes(repo: Path) -> None:
    listing = tree(repo / "resnet")
    assert listing.is_dir
    assert sorted(o.relpath for o in listing.objects) == [
        "1/model.onnx",
        "2/model.onnx",
        "config.json",
    ]
    before = identity(repo / "resnet")
    assert identity(repo / "resnet") == before
    write(repo / "resnet" / "3" / "model.onnx", b"three")
    added = identity(repo / "resnet")
    assert added != before
    path = repo / "resnet" / "1" / "model.onnx"
    path.write_bytes(b"ONE!")
    assert identity(repo / "resnet") != added
    assert identity(path) != identity(repo / "resnet" / "2" / "model.onnx")


def test_push_to_a_folder_skips_unchanged_files(repo: Path, tmp_path: Path) -> None:
    dest = tmp_path / "remote"
    first = push(repo, f"file://{dest}")
    assert sorted(first.uploaded) == [
        "resnet/1/model.onnx",
        "resnet/2/model.onnx",
        "resnet/config.json",
    ]
    assert first.bytes_uploaded == 8
    assert (dest / "resnet" / "2" / "model.onnx").read_bytes() == b"two"
    (repo / "resnet" / "2" / "model.onnx").write_bytes(b"TWO")  # same size, new content
    second = push(repo, dest)
    assert second.uploaded == ["resnet/2/model.onnx"]
    assert len(second.skipped) == 2
    assert (dest / "resnet" / "2" / "model.onnx").read_bytes() == b"TWO"


def test_push_shows_progress(
    repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    push(repo, tmp_path / "remote", progress=True)
    err = capsys.readouterr().err
    assert "push remote: 100%" in err and "8.00/8.00" in err


def test_push_a_single_file(repo: Path, tmp_path: Path) -> None:
    result = push(repo / "resnet" / "config.json", tmp_path / "out" / "cfg.json")
    assert result.uploaded == ["cfg.json"]
    assert (tmp_path / "out" / "cfg.json").read_bytes() == b"{}"
    assert push(repo / "resnet" / "config.json", tmp_path / "out" / "cfg.json").skipped == [
        "cfg.json"
    ]


def test_push_refuses_http_and_missing_sources(repo: Path, tmp_path: Path) -> None:
    with pytest.raises(StorageConfigError, match="cannot push to https"):
        push(repo, "https://example.com/models")
    with pytest.raises(StorageNotFound):
        push(tmp_path / "nothing", tmp_path / "dest")


def test_cache_returns_local_paths_as_they_are(repo: Path, tmp_path: Path) -> None:
    cache = ModelCache(tmp_path / "cache", max_bytes=1000)
    assert cache.fetch(repo / "resnet") == repo / "resnet"
    assert cache.fetch(f"file://{repo}/resnet/1/model.onnx") == repo / "resnet" / "1" / "model.onnx"
    cache.release(repo / "resnet")  # nothing to release: harmless
    assert cache.entries() == []
    with pytest.raises(StorageNotFound):
        cache.fetch(repo / "missing")


@pytest.mark.parametrize(
    ("scheme", "module", "extra"),
    [("gs", "gcsfs", "gcs"), ("oss", "ossfs", "oss"), ("hdfs", "pyarrow", "hdfs")],
)
def test_missing_backend_names_the_extra(scheme: str, module: str, extra: str) -> None:
    uri = f"{scheme}://bucket/models"
    if importlib.util.find_spec(module) is not None:
        return  # installed here: there is no missing backend to report
    with pytest.raises(StorageBackendMissing) as info:
        open_filesystem(uri)
    assert isinstance(info.value, Unsupported)
    assert f"pip install 'pier[{extra}]'" in str(info.value)
    assert uri in str(info.value)


def test_local_filesystem(repo: Path) -> None:
    fs, path = open_filesystem(f"file://{repo}")
    assert path == str(repo)
    assert sorted(os.path.basename(p) for p in fs.ls(path)) == ["resnet"]
