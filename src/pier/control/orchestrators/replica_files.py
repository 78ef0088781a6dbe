"""A replica's folder on disk: replica.json (what re-adoption needs), its log, and old logs.

Layout under ``home/replicas``::

    <id>/replica.json        id, service, revision, port, pid, start ticks, command, spec
    <id>/model-config.json   the model config the replica's server reads
    <id>/replica.log         stdout + stderr (rotated at LOG_ROTATE_BYTES into replica.log.1)
    _logs/<id>.log           logs of stopped replicas, the last KEEP_STOPPED_LOGS per service,
                             so `pier logs` still shows why a replica went away
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

LOG_NAME = "replica.log"
LOG_ROTATE_BYTES = 10 * 1024 * 1024
KEEP_STOPPED_LOGS = 5
ARCHIVE_DIR = "_logs"
_TAIL_WINDOW = 256 * 1024


@dataclass
class ReplicaFile:
    """The contents of replica.json."""

    id: str
    service: str
    revision: int
    port: int
    pid: int | None
    start_ticks: int | None
    command: list[str]
    spec: dict[str, Any]
    restarts: int = 0
    started_at: float = 0.0
    gpus: list[int] = field(default_factory=list)
    cpus: list[int] = field(default_factory=list)

    def save(self, folder: Path) -> None:
        write_atomic(folder / "replica.json", json.dumps(asdict(self), indent=2).encode())

    @classmethod
    def load(cls, folder: Path) -> ReplicaFile | None:
        """The replica.json in ``folder``; None when missing or unreadable."""
        try:
            data = json.loads((folder / "replica.json").read_text())
            return cls(**data)
        except (OSError, ValueError, TypeError):
            return None


def write_atomic(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder and rename it over ``path``."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def rotate_log(log: Path, limit: int = LOG_ROTATE_BYTES) -> bool:
    """Copy a log past ``limit`` to ``<log>.1`` and truncate it; True when rotated.

    Copy-and-truncate because the replica holds the file open with O_APPEND and keeps
    writing to its end; lines written between the copy and the truncate are lost.
    """
    try:
        if log.stat().st_size < limit:
            return False
        shutil.copyfile(log, log.with_name(log.name + ".1"))
        os.truncate(log, 0)
    except OSError:
        return False
    return True


def archive_log(folder: Path, replicas_dir: Path, service: str) -> None:
    """Keep a stopped replica's log under _logs/, pruning the service's oldest ones."""
    log = folder / LOG_NAME
    archive = replicas_dir / ARCHIVE_DIR
    with contextlib.suppress(OSError):
        archive.mkdir(exist_ok=True)
        os.replace(log, archive / f"{folder.name}.log")
    kept = sorted(archived_logs(replicas_dir, service), key=_mtime, reverse=True)
    for old in kept[KEEP_STOPPED_LOGS:]:
        old.unlink(missing_ok=True)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def replica_id_pattern(service: str) -> re.Pattern[str]:
    return re.compile(re.escape(service) + r"-\d+-[a-z0-9]{5}")


def live_logs(replicas_dir: Path, service: str) -> dict[str, Path]:
    """Replica id → log of the service's replicas that have a folder now."""
    pattern = replica_id_pattern(service)
    with contextlib.suppress(OSError):
        return {
            d.name: d / LOG_NAME
            for d in sorted(replicas_dir.iterdir())
            if pattern.fullmatch(d.name) and (d / LOG_NAME).exists()
        }
    return {}


def archived_logs(replicas_dir: Path, service: str) -> list[Path]:
    pattern = replica_id_pattern(service)
    with contextlib.suppress(OSError):
        return [p for p in (replicas_dir / ARCHIVE_DIR).iterdir() if pattern.fullmatch(p.stem)]
    return []


def tail_lines(path: Path, count: int) -> tuple[list[str], int]:
    """The last ``count`` lines of a file and the offset its end was at."""
    try:
        with open(path, "rb") as f:
            end = f.seek(0, os.SEEK_END)
            start = max(0, end - _TAIL_WINDOW)
            f.seek(start)
            data = f.read(end - start)
    except OSError:
        return [], 0
    lines = data.decode("utf-8", "replace").splitlines()
    if start > 0 and lines:
        lines = lines[1:]  # the first one is cut
    return (lines[-count:] if count > 0 else []), end


def error_reason(path: Path, limit: int = 500) -> str:
    """The last error the log shows (a JSON line at level error, or a Python exception line)."""
    lines, _ = tail_lines(path, 400)
    for line in reversed(lines):
        text = line.strip()
        if text.startswith("{"):
            try:
                record = json.loads(text)
            except ValueError:
                continue
            if isinstance(record, dict) and str(record.get("level", "")).lower() in (
                "error",
                "critical",
            ):
                return str(record.get("msg", ""))[:limit]
        elif re.match(r"^[A-Za-z_.]*(Error|Exception)\b", text) or " ERROR " in text:
            return text[:limit]
    return ""


def _is_probe(line: str) -> bool:
    """An access-log line of the orchestrator's own readiness probe (several a second)."""
    return '"path":"/v2/health/ready"' in line and '"type":"access"' in line


async def read_logs(
    files: dict[str, Path], tail: int, follow: bool, interval: float
) -> AsyncIterator[str]:
    """The last ``tail`` lines of each file, then (``follow``) lines as they are appended.

    Lines carry "<replica id> | " in front when there are several files. Readiness
    probes are left out: they would drown what the user is looking for.
    """
    prefix = len(files) > 1
    offsets: dict[str, int] = {}
    for rid, path in files.items():
        # Read extra lines so that `tail` remain once the probes are dropped.
        lines, offsets[rid] = tail_lines(path, tail * 4)
        kept = [line for line in lines if not _is_probe(line)]
        for line in kept[-tail:] if tail > 0 else []:
            yield f"{rid} | {line}" if prefix else line
    partial = dict.fromkeys(files, b"")
    while follow:
        await asyncio.sleep(interval)
        for rid, path in files.items():
            try:
                if path.stat().st_size < offsets[rid]:  # rotated (truncated): start over
                    offsets[rid], partial[rid] = 0, b""
                with open(path, "rb") as f:
                    f.seek(offsets[rid])
                    data = f.read()
            except OSError:
                continue
            offsets[rid] += len(data)
            *complete, partial[rid] = (partial[rid] + data).split(b"\n")
            for raw in complete:
                line = raw.decode("utf-8", "replace")
                if not _is_probe(line):
                    yield f"{rid} | {line}" if prefix else line
