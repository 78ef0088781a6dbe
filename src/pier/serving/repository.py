"""The model repository: versions on disk, version policy, labels, loading and hot reload."""

from __future__ import annotations

import asyncio
import gc
import logging
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from pier.errors import ConfigError, NotFound, PierError, Unavailable
from pier.observe.metrics import Metrics
from pier.serving.batching import Batcher
from pier.serving.execution import Runner
from pier.serving.loader import build_version
from pier.serving.modelconfig import CONFIG_FILENAMES, ModelConfig, find_config_file, load_config
from pier.serving.served import ServedVersion
from pier.serving.status import VersionState, VersionStatus

log = logging.getLogger(__name__)

Fingerprint = tuple[tuple[str, int, int], ...]


def fingerprint(path: Path, limit: int = 10_000) -> Fingerprint:
    """Names, sizes and mtimes of the files under ``path``: changes when files change."""
    items: list[tuple[str, int, int]] = []
    for p in sorted(path.rglob("*")):
        if len(items) >= limit:
            break
        try:
            if p.is_file():
                st = p.stat()
                items.append((str(p.relative_to(path)), st.st_size, st.st_mtime_ns))
        except OSError:
            continue
    return tuple(items)


def list_versions(model_dir: Path) -> list[int]:
    """Positive integer subfolders of a model folder; anything else is ignored."""
    versions = []
    try:
        children = list(model_dir.iterdir())
    except OSError:
        return []
    for child in children:
        if child.is_dir() and child.name.isdigit() and int(child.name) > 0:
            versions.append(int(child.name))
    return sorted(versions)


@dataclass(slots=True)
class _Slot:
    status: VersionStatus
    served: ServedVersion | None = None
    fingerprint: Fingerprint = ()


@dataclass(slots=True)
class _Entry:
    name: str
    path: Path
    config: ModelConfig = field(default_factory=ModelConfig)
    config_stamp: Fingerprint = ()
    override: ModelConfig | None = None
    slots: dict[int, _Slot] = field(default_factory=dict)


class ModelRepository:
    """Keeps the served versions of every model in step with a folder on disk."""

    def __init__(
        self,
        root: Path,
        executor: Executor,
        metrics: Metrics,
        *,
        control_mode: str = "poll",
        load_models: list[str] | None = None,
    ) -> None:
        self.root = root
        self._executor = executor
        self._metrics = metrics
        self._control_mode = control_mode
        self._wanted: set[str] = set(load_models or [])
        self._entries: dict[str, _Entry] = {}
        self._served: dict[tuple[str, int], ServedVersion] = {}
        self._latest: dict[str, ServedVersion] = {}
        self._lock = asyncio.Lock()
        self._loads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="pier-load")

    # ----- lookups (hot path) -------------------------------------------------

    def resolve(
        self, name: str, version: int | None = None, label: str | None = None
    ) -> ServedVersion:
        """The version a request addresses: explicit, by label, or the latest available."""
        if version is None and label is None:
            served = self._latest.get(name)
            if served is not None:
                return served
            self._raise_missing(name, None)
        if label is not None:
            entry = self._entries.get(name)
            if entry is None:
                raise NotFound(f"model '{name}' is not found in the repository")
            labels = (entry.override or entry.config).version_labels
            if label not in labels:
                known = ", ".join(sorted(labels)) or "none"
                raise NotFound(f"model '{name}' has no version label '{label}' (labels: {known})")
            version = labels[label]
        assert version is not None
        served = self._served.get((name, version))
        if served is None:
            self._raise_missing(name, version)
        return served

    def _raise_missing(self, name: str, version: int | None) -> NoReturn:
        entry = self._entries.get(name)
        if entry is None:
            raise NotFound(f"model '{name}' is not found in the repository")
        if version is None:
            if not entry.slots:
                raise NotFound(f"model '{name}' has no versions to serve")
            reasons = [s.status for s in entry.slots.values()]
            raise Unavailable(f"model '{name}' has no available version: {_describe(reasons)}")
        slot = entry.slots.get(version)
        if slot is None:
            raise NotFound(f"model '{name}' has no version {version}")
        raise Unavailable(
            f"model '{name}' version {version} is not available: {_describe([slot.status])}"
        )

    def model_names(self) -> list[str]:
        return sorted(self._entries)

    def statuses(self, name: str, version: int | None = None) -> list[VersionStatus]:
        """Load state of each version of a model (or of one version)."""
        entry = self._entries.get(name)
        if entry is None:
            raise NotFound(f"model '{name}' is not found in the repository")
        if version is not None:
            slot = entry.slots.get(version)
            if slot is None:
                raise NotFound(f"model '{name}' has no version {version}")
            return [slot.status]
        return [entry.slots[v].status for v in sorted(entry.slots)]

    def available(self, name: str) -> list[ServedVersion]:
        entry = self._entries.get(name)
        if entry is None:
            return []
        return [s.served for _, s in sorted(entry.slots.items()) if s.served is not None]

    def all_ready(self) -> bool:
        """True when every known model has at least one available version."""
        return all(name in self._latest for name in self._entries)

    def index(self) -> list[tuple[str, VersionStatus | None]]:
        """Every model folder with each version's state (None for a model with no versions)."""
        rows: list[tuple[str, VersionStatus | None]] = []
        names = set(self._entries)
        if self.root.is_dir():
            names |= {p.name for p in self.root.iterdir() if _is_model_dir(p)}
        for name in sorted(names):
            entry = self._entries.get(name)
            if entry is None or not entry.slots:
                rows.append((name, None))
                continue
            rows.extend((name, entry.slots[v].status) for v in sorted(entry.slots))
        return rows

    # ----- changes -------------------------------------------------------------

    async def scan(self) -> None:
        """Bring every managed model in line with the disk (one pass)."""
        async with self._lock:
            on_disk = {p.name: p for p in _model_dirs(self.root)}
            managed = set(on_disk)
            if self._control_mode == "explicit":
                managed = set(on_disk) if "*" in self._wanted else managed & self._wanted
            for name in sorted(managed):
                await self._sync(name, on_disk[name])
            for name in [n for n in self._entries if n not in managed]:
                await self._remove(name)

    async def load_model(self, name: str, override: ModelConfig | None = None) -> None:
        """Load (or reload) one model by name; it stays managed until unloaded."""
        async with self._lock:
            path = self.root / name
            if not _is_model_dir(path):
                raise NotFound(f"model '{name}' is not found in the repository at {self.root}")
            self._wanted.add(name)
            entry = self._entries.get(name)
            if entry is not None and entry.override != override:
                await self._remove(name)
            await self._sync(name, path, override=override, force=override is not None)
            entry = self._entries[name]
            failed = [
                s.status for s in entry.slots.values() if s.status.state is VersionState.FAILED
            ]
            if failed:
                raise Unavailable(f"model '{name}' failed to load: {_describe(failed)}")

    async def unload_model(self, name: str) -> None:
        async with self._lock:
            if name not in self._entries:
                raise NotFound(f"model '{name}' is not loaded")
            self._wanted.discard(name)
            await self._remove(name)

    async def close(self) -> None:
        async with self._lock:
            for name in list(self._entries):
                await self._remove(name)
        self._loads.shutdown(wait=False, cancel_futures=True)

    async def _sync(
        self, name: str, path: Path, override: ModelConfig | None = None, force: bool = False
    ) -> None:
        entry = self._entries.get(name)
        if entry is None:
            entry = self._entries[name] = _Entry(name, path, override=override)
        stamp = _config_stamp(path)
        config_changed = stamp != entry.config_stamp
        if config_changed or force:
            entry.config_stamp = stamp
            try:
                entry.config = entry.override or load_config(path)
            except ConfigError as exc:
                await self._fail_all(entry, list_versions(path), exc.message)
                return
        config = entry.config
        desired = config.version_policy.select(list_versions(path))
        for version in desired:
            vpath = path / str(version)
            fp = fingerprint(vpath)
            slot = entry.slots.get(version)
            if slot is None or slot.fingerprint != fp or config_changed or force:
                await self._load_version(entry, version, vpath, config, fp)
        for version in [v for v in entry.slots if v not in desired]:
            await self._unload_version(entry, version)
        self._refresh_latest(name)

    async def _fail_all(self, entry: _Entry, versions: list[int], reason: str) -> None:
        for version in versions:
            slot = entry.slots.get(version)
            if slot is not None and slot.served is not None:
                continue  # keep serving what works; the bad config is reported in the log
            entry.slots[version] = _Slot(VersionStatus(version, VersionState.FAILED, reason))
            self._metrics.set_state(entry.name, version, "FAILED")
        log.error("model %s: %s", entry.name, reason)

    async def _load_version(
        self, entry: _Entry, version: int, vpath: Path, config: ModelConfig, fp: Fingerprint
    ) -> None:
        name = entry.name
        old = entry.slots.get(version)
        if old is None or old.served is None:
            entry.slots[version] = _Slot(VersionStatus(version, VersionState.LOADING), None, fp)
            self._metrics.set_state(name, version, "LOADING")
        log.info("loading model %s version %d from %s", name, version, vpath)
        loop = asyncio.get_running_loop()
        try:
            built = await loop.run_in_executor(self._loads, build_version, vpath, config)
        except PierError as exc:
            self._load_failed(entry, version, fp, old, exc.message)
            return
        except Exception as exc:
            self._load_failed(entry, version, fp, old, f"{type(exc).__name__}: {exc}")
            return
        runner = Runner(built.instances, self._executor, built.inline)
        batcher = None
        if config.dynamic_batching is not None:
            batcher = Batcher(runner, config.dynamic_batching, f"{name}:{version}")
        served = ServedVersion(
            name,
            version,
            built.instances[0],
            config,
            runner,
            batcher,
            self._metrics.bind(name, version),
        )
        entry.slots[version] = _Slot(VersionStatus(version, VersionState.AVAILABLE), served, fp)
        self._served[(name, version)] = served
        self._metrics.set_state(name, version, "AVAILABLE")
        mode = "batched" if batcher else ("inline" if built.inline else "thread pool")
        log.info(
            "model %s version %d is available (runtime %s, %s, warm-up %s)",
            name,
            version,
            served.model.runtime,
            mode,
            "n/a" if built.warmup_s is None else f"{built.warmup_s * 1e6:.0f} µs",
        )
        if old is not None and old.served is not None:
            await self._retire(old.served)  # a reload: the new one already serves

    def _load_failed(
        self, entry: _Entry, version: int, fp: Fingerprint, old: _Slot | None, reason: str
    ) -> None:
        log.error("model %s version %d failed to load: %s", entry.name, version, reason)
        if old is not None and old.served is not None:
            old.fingerprint = fp  # keep serving the previous files; don't retry until they change
            return
        entry.slots[version] = _Slot(VersionStatus(version, VersionState.FAILED, reason), None, fp)
        self._metrics.set_state(entry.name, version, "FAILED")

    async def _unload_version(self, entry: _Entry, version: int) -> None:
        slot = entry.slots.get(version)
        if slot is None:
            return
        if slot.served is not None:
            slot.status = VersionStatus(version, VersionState.UNLOADING)
            self._metrics.set_state(entry.name, version, "UNLOADING")
            self._served.pop((entry.name, version), None)
            self._refresh_latest(entry.name)
            await self._retire(slot.served)
            log.info("model %s version %d unloaded", entry.name, version)
        del entry.slots[version]
        self._metrics.forget(entry.name, version)

    async def _retire(self, served: ServedVersion) -> None:
        await served.drain()
        self._metrics.unbind(served.metrics)
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._loads, _release, served)

    async def _remove(self, name: str) -> None:
        entry = self._entries.get(name)
        if entry is None:
            return
        for version in list(entry.slots):
            await self._unload_version(entry, version)
        del self._entries[name]
        self._latest.pop(name, None)

    def _refresh_latest(self, name: str) -> None:
        available = self.available(name)
        if available:
            self._latest[name] = available[-1]
        else:
            self._latest.pop(name, None)


def _release(served: ServedVersion) -> None:
    served.release()
    gc.collect()


def _describe(statuses: list[VersionStatus]) -> str:
    parts = []
    for s in statuses:
        text = f"version {s.version} is {s.state.value}"
        if s.reason:
            text += f" ({s.reason})"
        parts.append(text)
    return "; ".join(parts)


def _is_model_dir(p: Path) -> bool:
    return p.is_dir() and not p.name.startswith((".", "_"))


def _model_dirs(root: Path) -> list[Path]:
    try:
        return sorted(p for p in root.iterdir() if _is_model_dir(p))
    except OSError as exc:
        log.error("cannot read the model repository %s: %s", root, exc)
        return []


def _config_stamp(model_dir: Path) -> Fingerprint:
    path = find_config_file(model_dir)
    if path is None:
        return (("", 0, 0),)
    try:
        st = path.stat()
    except OSError:
        return (("", 0, 0),)
    return ((path.name, st.st_size, st.st_mtime_ns),)


__all__ = ["CONFIG_FILENAMES", "ModelRepository", "fingerprint", "list_versions"]
