"""Archive extraction: good archives come out whole, malicious ones write nothing."""

from __future__ import annotations

import io
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest

from pier.errors import ArchiveError, InvalidInput
from pier.storage import extract, is_archive
from pier.storage.archive import archive_stem, safe_relpath


def make_tar(
    path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w:gz"
) -> Path:
    with tarfile.open(path, mode) as tar:
        for m in members:
            if isinstance(m, tarfile.TarInfo):
                tar.addfile(m)
            else:
                name, data = m
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info


def special(name: str, kind: bytes) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    return info


def make_zip(path: Path, members: list[tuple[str, bytes] | zipfile.ZipInfo]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for m in members:
            if isinstance(m, zipfile.ZipInfo):
                zf.writestr(m, b"../../outside")
            else:
                zf.writestr(m[0], m[1])
    return path


def test_suffixes() -> None:
    for name in ("m.tar", "m.tar.gz", "M.TGZ", "m.tar.bz2", "m.tar.xz", "m.zip"):
        assert is_archive(name)
    assert not is_archive("model.onnx")
    assert archive_stem("resnet.tar.gz") == "resnet"
    assert archive_stem("resnet.zip") == "resnet"


@pytest.mark.parametrize("mode", ["w:gz", "w", "w:bz2", "w:xz"])
def test_tar_extracts(tmp_path: Path, mode: str) -> None:
    suffix = {"w:gz": ".tar.gz", "w": ".tar", "w:bz2": ".tar.bz2", "w:xz": ".tar.xz"}[mode]
    archive = make_tar(
        tmp_path / f"m{suffix}",
        [
            special("./", tarfile.DIRTYPE),
            ("./1/model.onnx", b"onnx"),
            ("1/config.json", b"{}"),
            link("1/latest", "model.onnx"),
            link("1/copy", "1/model.onnx", tarfile.LNKTYPE),
        ],
        mode,
    )
    extract(archive, tmp_path / "out")
    assert (tmp_path / "out" / "1" / "model.onnx").read_bytes() == b"onnx"
    assert (tmp_path / "out" / "1" / "latest").resolve() == (
        tmp_path / "out" / "1" / "model.onnx"
    ).resolve()
    assert (tmp_path / "out" / "1" / "copy").read_bytes() == b"onnx"


def test_zip_extracts(tmp_path: Path) -> None:
    archive = make_zip(
        tmp_path / "m.zip", [("1/model.onnx", b"onnx"), ("1/sub/", b""), ("README", b"hi")]
    )
    extract(archive, tmp_path / "out")
    assert (tmp_path / "out" / "1" / "model.onnx").read_bytes() == b"onnx"
    assert (tmp_path / "out" / "1" / "sub").is_dir()
    assert (tmp_path / "out" / "README").read_text() == "hi"


MALICIOUS_TAR = {
    "traversal": [("ok.txt", b"x"), ("../evil.txt", b"x")],
    "nested traversal": [("a/../../evil.txt", b"x")],
    "absolute path": [("/tmp/evil.txt", b"x")],
    "symlink escape": [link("a/link", "../../etc/passwd")],
    "absolute symlink": [link("link", "/etc/passwd")],
    "hardlink escape": [link("hard", "../outside", tarfile.LNKTYPE)],
    "absolute hardlink": [link("hard", "/etc/passwd", tarfile.LNKTYPE)],
    "character device": [special("dev", tarfile.CHRTYPE)],
    "block device": [special("blk", tarfile.BLKTYPE)],
    "fifo": [special("fifo", tarfile.FIFOTYPE)],
}


@pytest.mark.parametrize("case", sorted(MALICIOUS_TAR))
def test_malicious_tar_is_refused_and_writes_nothing(tmp_path: Path, case: str) -> None:
    archive = make_tar(tmp_path / "evil.tar.gz", MALICIOUS_TAR[case])  # type: ignore[arg-type]
    out = tmp_path / "out"
    with pytest.raises(ArchiveError, match="unsafe archive member") as info:
        extract(archive, out, label="s3://bucket/evil.tar.gz")
    assert isinstance(info.value, InvalidInput)
    assert "s3://bucket/evil.tar.gz" in str(info.value)
    assert list(out.iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()


def test_symlink_then_write_through_it_is_refused(tmp_path: Path) -> None:
    # A link to a folder inside, then a member under the link: still inside, allowed;
    # a link to the parent, then a member through it: refused before anything is written.
    archive = make_tar(tmp_path / "evil.tar", [link("up", ".."), ("up/evil.txt", b"x")], "w")
    with pytest.raises(ArchiveError):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_chained_links_that_escape_together_are_refused(tmp_path: Path) -> None:
    # Each link alone stays inside ("s/u" -> the root, "p" -> "s") on paper, but on disk
    # "s/u/.." is the root's parent: only the extraction filter can see that.
    members = [link("s/u", ".."), link("p", "s/u/.."), ("p/evil.txt", b"x")]
    out = tmp_path / "out"
    with pytest.raises(ArchiveError):
        extract(make_tar(tmp_path / "chain.tar", members, "w"), out)  # type: ignore[arg-type]
    assert not (tmp_path / "evil.txt").exists()
    assert list(out.iterdir()) == []


@pytest.mark.parametrize(
    "name", ["../evil.txt", "/abs/evil.txt", "a/../../evil.txt", "..\\evil.txt", "C:/evil.txt"]
)
def test_malicious_zip_is_refused(tmp_path: Path, name: str) -> None:
    archive = make_zip(tmp_path / "evil.zip", [("ok.txt", b"x"), (name, b"x")])
    with pytest.raises(ArchiveError, match="unsafe archive member"):
        extract(archive, tmp_path / "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_zip_symlink_is_refused(tmp_path: Path) -> None:
    info = zipfile.ZipInfo("link")
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    with pytest.raises(ArchiveError, match="links are not allowed"):
        extract(make_zip(tmp_path / "l.zip", [info]), tmp_path / "out")


def test_expansion_is_bounded(tmp_path: Path) -> None:
    big = [("a", b"0" * 600), ("b", b"0" * 600)]
    with pytest.raises(ArchiveError, match="more than 1000 bytes"):
        extract(make_tar(tmp_path / "big.tgz", big), tmp_path / "t", max_bytes=1000)  # type: ignore[arg-type]
    with pytest.raises(ArchiveError, match="more than 1000 bytes"):
        extract(make_zip(tmp_path / "big.zip", big), tmp_path / "z", max_bytes=1000)  # type: ignore[arg-type]


def test_corrupt_archives(tmp_path: Path) -> None:
    (tmp_path / "bad.tar.gz").write_bytes(b"not gzip at all")
    (tmp_path / "bad.zip").write_bytes(b"not a zip")
    for name in ("bad.tar.gz", "bad.zip"):
        with pytest.raises(ArchiveError, match="corrupt"):
            extract(tmp_path / name, tmp_path / "out")
    with pytest.raises(ArchiveError, match="not an archive"):
        extract(tmp_path / "model.onnx", tmp_path / "out")


@pytest.mark.parametrize(
    ("name", "clean"),
    [
        ("a/b", "a/b"),
        ("./a//b/", "a/b"),
        ("a\\b", "a/b"),
        ("../a", None),
        ("/a", None),
        ("", None),
        ("D:x", None),
    ],
)
def test_safe_relpath(name: str, clean: str | None) -> None:
    assert safe_relpath(name) == clean
