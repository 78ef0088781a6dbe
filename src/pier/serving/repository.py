"""The model repository: versions on disk, version policy, labels, loading and hot reload."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn, TypeVar

from pier.errors import ConfigError, InvalidInput, NotFound, PierError, Unavailable
from pier.observe.metrics import Metrics
from pier.serving.batching import Batcher
from pier.serving.execution import Runner
from pier.serving.loader import Built, build_version
from pier.serving.modelconfig import ModelConfig
from pier.serving.served import ServedVersion
from pier.serving.sources import LocalSource, RepositorySource, Stamp
from pier.serving.status import VersionState, VersionStatus

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(slots=True)
class _Slot:
    status: VersionStatus
    served: ServedVersion | None = None
    fingerprint: Stamp = ()


@dataclass(slots=True)
class _Entry:
    name: str
    config: ModelConfig = field(default_factory=ModelConfig)
    config_stamp: Stamp | None = None
    override: ModelConfig | None = None
    slots: dict[int, _Slot] = field(default_factory=dict)


class ModelRepository:
    """Keeps the served versions of every model in step with its source (a folder, a bucket)."""

    def __init__(
        self,
        source: RepositorySource | Path,
        executor: Executor,
        metrics: Metrics,
        *,
        control_mode: str = "poll",
        load_models: list[str] | None = None,
    ) -> None:
        self.source = LocalSource(source) if isinstance(source, Path) else source
        self._known: set[str] = set()  # model folders seen by the last scan
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
        for name in sorted(self._known | set(self._entries)):
            entry = self._entries.get(name)
            if entry is None or not entry.slots:
                rows.append((name, None))
                continue
            rows.extend((name, entry.slots[v].status) for v in sorted(entry.slots))
        return rows

    # ----- changes -------------------------------------------------------------

    async def scan(self) -> None:
        """Bring every managed model in line with the source (one pass)."""
        async with self._lock:
            names = await self._blocking(self.source.model_names)
            self._known = set(names)
            managed = set(names)
            if self._control_mode == "explicit" and "*" not in self._wanted:
                managed &= self._wanted
            for name in sorted(managed):
                await self._sync(name)
            for name in [n for n in self._entries if n not in managed]:
                await self._remove(name)

    async def load_model(self, name: str, override: ModelConfig | None = None) -> None:
        """Load (or reload) one model by name; it stays managed until unloaded.

        A reload that fails leaves the versions that served before serving, with their
        previous config (as Triton does), and raises saying why.
        """
        async with self._lock:
            names = await self._blocking(self.source.model_names)
            self._known = set(names)
            if name not in names:
                raise NotFound(
                    f"model '{name}' is not found in the repository at {self.source.description}"
                )
            self._wanted.add(name)
            entry = self._entries.get(name)
            if entry is not None and any(s.served for s in entry.slots.values()):
                await self._reload(entry, override)
                return
            if entry is not None and entry.override != override:
                await self._remove(name)
            await self._sync(name, override=override, force=override is not None)
            entry = self._entries[name]
            failed = [
                s.status for s in entry.slots.values() if s.status.state is VersionState.FAILED
            ]
            if failed:
                raise Unavailable(f"model '{name}' failed to load: {_describe(failed)}")

    async def _reload(self, entry: _Entry, override: ModelConfig | None) -> None:
        """Load a serving model again (with a new config, or none): all or nothing."""
        before = (entry.config, entry.config_stamp, entry.override)
        force = override is not None or entry.override is not None
        entry.override = override
        failures = await self._sync(entry.name, force=force, keep_on_failure=True)
        if not failures:
            return
        entry.config, entry.config_stamp, entry.override = before
        serving = ", ".join(s.version_str for s in self.available(entry.name)) or "none"
        message = (
            f"model '{entry.name}' failed to load: {'; '.join(failures)}; "
            f"the versions loaded before keep serving (version {serving})"
        )
        if override is not None:  # the caller's config is at fault
            raise InvalidInput(message)
        raise Unavailable(message)

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

    async def _blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a source call (file system or network I/O) off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self._loads, fn, *args)

    async def _sync(
        self,
        name: str,
        override: ModelConfig | None = None,
        force: bool = False,
        keep_on_failure: bool = False,
    ) -> list[str]:
        """Load what changed; return why loads failed ("" list when all loaded).

        With ``keep_on_failure``, a failed load unloads nothing that serves.
        """
        source = self.source
        failures: list[str] = []
        entry = self._entries.get(name)
        if entry is None:
            entry = self._entries[name] = _Entry(name, override=override)
        stamp = await self._blocking(source.config_stamp, name)
        config_changed = stamp != entry.config_stamp
        if config_changed or force:
            entry.config_stamp = stamp
            try:
                if entry.override is not None:
                    entry.config = entry.override
                else:
                    entry.config = await self._blocking(source.load_config, name)
            except ConfigError as exc:
                await self._fail_all(
                    entry, await self._blocking(source.versions, name), exc.message
                )
                return [exc.message]
        config = entry.config
        desired = config.version_policy.select(await self._blocking(source.versions, name))
        for version in desired:
            fp = await self._blocking(source.version_stamp, name, version)
            slot = entry.slots.get(version)
            if slot is None or slot.fingerprint != fp or config_changed or force:
                reason = await self._load_version(entry, version, config, fp)
                if reason is not None:
                    failures.append(f"version {version}: {reason}")
        if not (failures and keep_on_failure):
            for version in [v for v in entry.slots if v not in desired]:
                await self._unload_version(entry, version)
        self._refresh_latest(name)
        return failures

    async def _fail_all(self, entry: _Entry, versions: list[int], reason: str) -> None:
        for version in versions:
            slot = entry.slots.get(version)
            if slot is not None and slot.served is not None:
                continue  # keep serving what works; the bad config is reported in the log
            entry.slots[version] = _Slot(VersionStatus(version, VersionState.FAILED, reason))
            self._metrics.set_state(entry.name, version, "FAILED")
        log.error("model %s: %s", entry.name, reason)

    async def _load_version(
        self, entry: _Entry, version: int, config: ModelConfig, fp: Stamp
    ) -> str | None:
        """Load one version; return why it failed, or None."""
        name = entry.name
        old = entry.slots.get(version)
        if old is None or old.served is None:
            entry.slots[version] = _Slot(VersionStatus(version, VersionState.LOADING), None, fp)
            self._metrics.set_state(name, version, "LOADING")
        log.info("loading model %s version %d from %s", name, version, self.source.description)
        try:
            built = await self._blocking(self._build, name, version, config)
        except PierError as exc:
            self._load_failed(entry, version, fp, old, exc.message)
            return exc.message
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            self._load_failed(entry, version, fp, old, reason)
            return reason
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
            await self._blocking(self.source.release, name, version, True)
        return None

    def _build(self, name: str, version: int, config: ModelConfig) -> Built:
        return build_version(self.source.materialize(name, version), config)

    def _load_failed(
        self, entry: _Entry, version: int, fp: Stamp, old: _Slot | None, reason: str
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
        await self._blocking(self.source.release, entry.name, version)
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


__all__ = ["ModelRepository"]
