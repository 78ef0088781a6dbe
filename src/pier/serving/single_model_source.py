"""One model served under a chosen name from one URI (``pier serve --model NAME=URI``).

The URI may name a folder of numbered versions (``resnet/1/``, ``resnet/2/``), a folder
holding the model files directly, or a single model file; the last two are served as
version 1. A config override (``--model-config``) is laid over the model's own config
file, so a platform can set the runtime and batching without touching the user's folder.
"""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

from pier.errors import ConfigError, StorageNotFound
from pier.serving.modelconfig import (
    CONFIG_FILENAMES,
    ModelConfig,
    load_config,
    parse_config_file,
)
from pier.serving.sources import Stamp, config_file_stamp, files_stamp, version_numbers
from pier.storage import (
    ModelCache,
    StorageOptions,
    StorageURI,
    identity,
    ls,
    parse_uri,
    read_bytes,
)

log = logging.getLogger(__name__)

_CONFIG_NAMES = frozenset(CONFIG_FILENAMES)


def parse_model_option(text: str) -> tuple[str, str]:
    """Split ``NAME=URI``; raise ConfigError naming what is wrong."""
    name, sep, location = text.partition("=")
    name, location = name.strip(), location.strip()
    if not sep or not name or not location:
        raise ConfigError(f"--model {text!r}: expected NAME=URI (e.g. iris=./models/iris)")
    if name.startswith((".", "_")) or "/" in name:
        raise ConfigError(f"--model {text!r}: {name!r} is not a usable model name")
    return name, location


def merge_config(own: ModelConfig, override: ModelConfig | None) -> ModelConfig:
    """The model's own config with every field the override sets laid over it."""
    if override is None:
        return own
    update = {k: getattr(override, k) for k in override.model_fields_set}
    if "parameters" in update:
        update["parameters"] = {**own.parameters, **override.parameters}
    return own.model_copy(update=update)


def read_override(path: Path | None) -> ModelConfig | None:
    """The ``--model-config`` file, validated; None when not given."""
    if path is None:
        return None
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"--model-config {path}: cannot be read: {exc.strerror}") from None
    # The parsed model remembers which fields the file set: only those override.
    return parse_config_file(raw, path.name, str(path))


class SingleModelSource:
    """A repository of exactly one model, named by the caller, read from one URI."""

    def __init__(
        self,
        name: str,
        location: str,
        cache_dir: Path,
        cache_size: int,
        storage: StorageOptions,
        override: ModelConfig | None = None,
    ) -> None:
        self.name = name
        self.uri: StorageURI = parse_uri(location)
        self.override = override
        self.description = f"{name}={self.uri}"
        self._links = cache_dir / "single-files"
        self._options = storage
        self._cache: ModelCache | None = None
        if not self.uri.is_local:
            self._cache = ModelCache(cache_dir, cache_size)
        self._held: dict[int, list[Path]] = {}

    # -- layout -------------------------------------------------------------------

    def _layout(self) -> tuple[str, list[int]]:
        """('versions', [..]) | ('flat', [1]) | ('file', [1]) | ('empty', [])."""
        if self.uri.is_local:
            path = Path(self.uri.path)
            if path.is_file():
                return "file", [1]
            if not path.is_dir():
                raise StorageNotFound(
                    f"{self.uri}: not found", uri=str(self.uri), cause="not found"
                )
            children = list(path.iterdir())
            versions = version_numbers([p.name for p in children if p.is_dir()])
            if versions:
                return "versions", versions
            files = [p for p in children if p.is_file() and p.name not in CONFIG_FILENAMES]
            return ("flat", [1]) if files else ("empty", [])
        entries = ls(self.uri, self._options)
        versions = version_numbers([e.name for e in entries if e.is_dir])
        if versions:
            return "versions", versions
        objects = [e for e in entries if not e.is_dir and e.name not in CONFIG_FILENAMES]
        if len(objects) == 1 and objects[0].name == self.uri.name:
            return "file", [1]
        return ("flat", [1]) if objects else ("empty", [])

    def _version_uri(self, layout: str, version: int) -> StorageURI:
        return self.uri.join(str(version)) if layout == "versions" else self.uri

    def check(self) -> None:
        """Fail now when the URI cannot be read or holds no model (serve refuses to start)."""
        layout, _ = self._layout()
        if layout == "empty":
            raise StorageNotFound(
                f"{self.uri}: holds no model files", uri=str(self.uri), cause="empty"
            )

    # -- RepositorySource -----------------------------------------------------------

    def model_names(self) -> list[str]:
        return [self.name]

    def versions(self, model: str) -> list[int]:
        try:
            return self._layout()[1]
        except StorageNotFound:
            log.error("model %s: %s is not there", self.name, self.uri)
            return []

    def config_stamp(self, model: str) -> Stamp:
        if self.uri.is_local:
            return config_file_stamp(Path(self.uri.path))
        entry = self._remote_config_name()
        return (("", 0, identity(self.uri.join(entry), self._options)),) if entry else ()

    def _remote_config_name(self) -> str | None:
        try:
            names = {e.name for e in ls(self.uri, self._options) if not e.is_dir}
        except StorageNotFound:
            return None
        return next((n for n in CONFIG_FILENAMES if n in names), None)

    def load_config(self, model: str) -> ModelConfig:
        own = ModelConfig()
        if self.uri.is_local:
            folder = Path(self.uri.path)
            if folder.is_dir():
                own = load_config(folder)
        else:
            entry = self._remote_config_name()
            raw = read_bytes(self.uri.join(entry), self._options) if entry else None
            if entry and raw is not None:
                own = parse_config_file(raw, entry, str(self.uri.join(entry)))
        return merge_config(own, self.override)

    def version_stamp(self, model: str, version: int) -> Stamp:
        layout, _ = self._layout()
        if not self.uri.is_local:
            return (("", 0, identity(self._version_uri(layout, version), self._options)),)
        # Config files sit beside the model files in a flat folder: they are not the model.
        return files_stamp(Path(self._version_uri(layout, version).path), skip=_CONFIG_NAMES)

    def materialize(self, model: str, version: int) -> Path:
        layout, _ = self._layout()
        uri = self._version_uri(layout, version)
        if self._cache is None:
            path = Path(uri.path)
        else:
            path = self._cache.fetch(uri, self._options)
            self._held.setdefault(version, []).append(path)
        return self._folder_of(path) if path.is_file() else path

    def _folder_of(self, file: Path) -> Path:
        """A folder whose only entry links to ``file``: runtimes load version folders."""
        digest = hashlib.sha256(str(file.resolve()).encode()).hexdigest()[:16]
        folder = self._links / digest
        link = folder / file.name
        if not link.exists():
            folder.mkdir(parents=True, exist_ok=True)
            tmp = folder / f".{file.name}.{os.getpid()}"
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(file.resolve())
            tmp.replace(link)
        return folder

    def release(self, model: str, version: int, keep_latest: bool = False) -> None:
        held = self._held.pop(version, [])
        if keep_latest and held:
            self._held[version] = [held.pop()]
        if self._cache is not None:
            for path in held:
                self._cache.release(path)
