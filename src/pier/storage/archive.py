"""Safe extraction of model archives (.tar, .tar.gz, .tgz, .tar.bz2, .tar.xz, .zip).

Every member is checked before anything is written: absolute paths, ``..``
components, links that leave the target folder, device files and FIFOs are
refused, and so is an archive that would expand past ``max_bytes``. Tar archives are
then extracted with Python's ``data`` filter as a second line of defence (it resolves
links already on disk, which catches chains of links that only escape together); on
any refusal the target folder is emptied again.
"""

from __future__ import annotations

import posixpath
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path, PurePosixPath

from pier.errors import ArchiveError

TAR_SUFFIXES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz")
ZIP_SUFFIXES = (".zip",)


def is_archive(name: str) -> bool:
    """Whether a file name has an archive suffix that ``extract`` handles."""
    lower = name.lower()
    return lower.endswith(TAR_SUFFIXES + ZIP_SUFFIXES)


def archive_stem(name: str) -> str:
    """The name without its archive suffix: ``resnet.tar.gz`` -> ``resnet``."""
    lower = name.lower()
    for suffix in sorted(TAR_SUFFIXES + ZIP_SUFFIXES, key=len, reverse=True):
        if lower.endswith(suffix):
            return name[: -len(suffix)]
    return name


def safe_relpath(name: str) -> str | None:
    """``name`` as a clean relative POSIX path, or None if it is absolute or climbs out.

    Backslashes count as separators and drive letters as absolute: archives made on
    Windows use both.
    """
    text = name.replace("\\", "/")
    if text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        return None
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


def extract(archive: Path, dest: Path, *, max_bytes: int | None = None, label: str = "") -> None:
    """Extract ``archive`` into the folder ``dest`` (created), or raise ``ArchiveError``.

    ``label`` names the archive in errors (its URI); it defaults to the file name.
    """
    label = label or archive.name
    dest.mkdir(parents=True, exist_ok=True)
    try:
        if archive.name.lower().endswith(ZIP_SUFFIXES):
            _extract_zip(archive, dest, max_bytes, label)
        elif archive.name.lower().endswith(TAR_SUFFIXES):
            _extract_tar(archive, dest, max_bytes, label)
        else:
            raise ArchiveError(
                f"{label}: not an archive Pier can extract", uri=label, cause="format"
            )
    except ArchiveError:
        # Links can combine into an escape that only the extraction filter sees, after
        # earlier members were written: leave nothing behind.
        for child in dest.iterdir():
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)
        raise


def _refuse(label: str, member: str, why: str) -> ArchiveError:
    return ArchiveError(
        f"{label}: unsafe archive member {member!r}: {why}; nothing was extracted",
        uri=label,
        cause="unsafe archive",
    )


def _too_large(label: str, total: int, max_bytes: int) -> ArchiveError:
    return ArchiveError(
        f"{label}: archive expands to more than {max_bytes} bytes ({total} and counting)",
        uri=label,
        cause="archive too large",
    )


def _extract_tar(archive: Path, dest: Path, max_bytes: int | None, label: str) -> None:
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            total = 0
            for member in members:
                _check_tar_member(member, label)
                total += max(member.size, 0)
                if max_bytes is not None and total > max_bytes:
                    raise _too_large(label, total, max_bytes)
            tar.extractall(dest, members=members, filter="data")
    except tarfile.FilterError as exc:
        raise _refuse(label, exc.tarinfo.name, str(exc)) from None
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise ArchiveError(
            f"{label}: corrupt or unreadable tar archive ({type(exc).__name__}: {exc})",
            uri=label,
            cause="corrupt archive",
        ) from None


def _check_tar_member(member: tarfile.TarInfo, label: str) -> None:
    if member.isdir() and _is_root(member.name):
        return  # "./", as `tar -C folder .` writes it
    rel = safe_relpath(member.name)
    if rel is None:
        raise _refuse(label, member.name, "absolute path or '..' component")
    if member.ischr() or member.isblk() or member.isfifo() or member.isdev():
        raise _refuse(label, member.name, "device files and FIFOs are not allowed")
    if member.issym():
        # A symlink resolves relative to the folder that holds it.
        target = posixpath.join(posixpath.dirname(rel), member.linkname)
        if member.linkname.startswith("/") or _escapes(target):
            raise _refuse(label, member.name, f"symlink to {member.linkname!r} leaves the folder")
    elif member.islnk():
        # A hard link names another member, relative to the archive root.
        if member.linkname.startswith("/") or _escapes(member.linkname):
            raise _refuse(label, member.name, f"hard link to {member.linkname!r} leaves the folder")
    elif not (member.isfile() or member.isdir()):
        raise _refuse(label, member.name, "unsupported member type")


def _escapes(relative: str) -> bool:
    """Whether a relative path, once normalized, climbs above its root."""
    normalized = posixpath.normpath(relative.replace("\\", "/"))
    return normalized == ".." or normalized.startswith(("../", "/"))


def _extract_zip(archive: Path, dest: Path, max_bytes: int | None, label: str) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            total = 0
            infos = [i for i in zf.infolist() if not (i.is_dir() and _is_root(i.filename))]
            for info in infos:
                if safe_relpath(info.filename) is None:
                    raise _refuse(label, info.filename, "absolute path or '..' component")
                # Unix file type bits, when the zip was made on Unix (zero otherwise).
                kind = stat.S_IFMT(info.external_attr >> 16)
                # zipfile would write links as plain files holding the target: refuse them
                # instead of extracting something other than what the archive says.
                if kind == stat.S_IFLNK:
                    raise _refuse(label, info.filename, "links are not allowed in zip archives")
                if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
                    raise _refuse(label, info.filename, "device files and FIFOs are not allowed")
                total += info.file_size
                if max_bytes is not None and total > max_bytes:
                    raise _too_large(label, total, max_bytes)
            root = dest.resolve()
            for info in infos:
                rel = safe_relpath(info.filename)
                assert rel is not None  # checked above
                target = (root / PurePosixPath(rel)).resolve()
                if not target.is_relative_to(root):  # a link already on disk, say
                    raise _refuse(label, info.filename, "resolves outside the folder")
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, target.open("wb") as out:
                    shutil.copyfileobj(src, out, 1 << 20)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, OSError) as exc:
        raise ArchiveError(
            f"{label}: corrupt or unreadable zip archive ({type(exc).__name__}: {exc})",
            uri=label,
            cause="corrupt archive",
        ) from None


def _is_root(name: str) -> bool:
    """``./`` and friends: the archive's own root folder, harmless as a directory entry."""
    text = name.replace("\\", "/")
    return not text.startswith("/") and all(p in ("", ".") for p in text.split("/"))
