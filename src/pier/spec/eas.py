"""Reading an Alibaba PAI-EAS service description (``eascmd create service.json``) as a Pier spec.

The EAS form is translated key by key into a dict in Pier's form. Each Pier field remembers
the EAS path it came from, so validation problems name what the user wrote. EAS keys that
are valid on EAS but mean nothing to Pier yet become warnings; keys EAS does not know are
problems.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pier.spec.service import shown, suggest

Loc = tuple[str, ...]

#: Top-level EAS keys Pier reads.
_MAPPED_TOP = {
    "name",
    "model_path",
    "processor",
    "processor_type",
    "processor_path",
    "processor_entry",
    "processor_params",
    "metadata",
}
#: Top-level EAS keys that are valid there but have no Pier meaning yet.
_IGNORED_TOP = {
    "token",
    "generate_token",
    "oss_endpoint",
    "role_arn",
    "model_entry",
    "model_config",
    "processor_mainclass",
    "warm_up_data_path",
    "data_image",
    "baseimage",
    "containers",
    "storage",
    "mount",
    "cloud",
    "autoscaler",
    "networking",
    "features",
    "dockerAuth",
    "labels",
    "runtime",
    "health_check",
    "unit",
}
#: metadata keys Pier reads (nested groups written flat, as "rpc.batching").
_MAPPED_META = {
    "name",
    "instance",
    "cpu",
    "gpu",
    "memory",
    "rpc.batching",
    "rpc.max_batch_size",
    "rpc.max_batch_timeout",
    "rpc.max_queue_size",
}
#: metadata keys valid on EAS that Pier does not use yet.
_IGNORED_META = {
    "resource",
    "resource_burstable",
    "workspace_id",
    "group",
    "role",
    "type",
    "qos",
    "cuda",
    "gpu_memory",
    "gpu_core_percentage",
    "disk",
    "shm_size",
    "rdma",
    "enable_grpc",
    "enable_webservice",
    "eas",
    "rpc.keepalive",
    "rpc.io_threads",
    "rpc.worker_threads",
    "rpc.rate_limit",
    "rpc.enable_jemalloc",
    "rpc.enable_sigterm",
    "rolling_strategy.max_surge",
    "rolling_strategy.max_unavailable",
}
#: metadata keys that hold a nested group and may also be written flat.
_GROUPS = ("rpc", "rolling_strategy")

# "pytorch_gpu_1.10", "tensorflow_cpu_1.12", "xgboost": runtime, optional device, optional version.
_EAS_PROCESSOR = re.compile(r"([a-z]+)(?:_(?:cpu|gpu))?(?:_\d+(?:\.\d+)*)?")


@dataclass
class EasTranslation:
    """A Pier-form dict plus what the translation learnt on the way."""

    data: dict[str, Any] = field(default_factory=dict)
    #: Pier location → the EAS path it was read from.
    origins: dict[Loc, str] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    #: Pier locations whose EAS source already has a problem (their Pier errors are noise).
    poisoned: set[Loc] = field(default_factory=set)

    def put(self, loc: Loc, value: Any, origin: str) -> None:
        target = self.data
        for part in loc[:-1]:
            target = target.setdefault(part, {})
        target[loc[-1]] = value
        self.origins[loc] = origin

    def fail(self, path: str, message: str, loc: Loc | None = None) -> None:
        self.problems.append((path, message))
        if loc is not None:
            self.poisoned.add(loc)
            self.origins.setdefault(loc, path)


def _quoted(value: Any) -> str:
    return shown(value) if isinstance(value, str) else repr(value)[:80]


def _unknown(key: str, known: set[str]) -> str:
    """The problem for a key EAS does not know, with the closest known one."""
    hint = suggest(key, sorted(known))
    return f"unknown key (neither a Pier-mapped nor a known EAS key){hint}"


def is_eas_form(data: Mapping[str, Any]) -> bool:
    """Whether a spec mapping is written in the EAS form rather than Pier's."""
    if "model" in data:
        return False
    return any(k in data for k in ("model_path", "metadata", "processor_params"))


def translate(data: Mapping[str, Any]) -> EasTranslation:
    """Translate an EAS service description into Pier's form."""
    out = EasTranslation()
    for key in data:
        if key in _IGNORED_TOP:
            out.warnings.append(f"{key}: valid on EAS but not used by Pier; ignored")
        elif key not in _MAPPED_TOP:
            out.fail(str(key), _unknown(str(key), _MAPPED_TOP | _IGNORED_TOP))
    if "name" in data:
        out.put(("name",), data["name"], "name")
    if "model_path" in data:
        out.put(("model",), data["model_path"], "model_path")
    else:
        out.origins[("model",)] = "model_path"
    _processor(data, out)
    if "processor_params" in data:
        _params(data["processor_params"], out)
    meta = data.get("metadata", {})
    if isinstance(meta, Mapping):
        _metadata(_flatten(meta, out), out)
    else:
        out.fail("metadata", "must be a mapping")
    out.origins.setdefault(("name",), "name")
    return out


def _processor(data: Mapping[str, Any], out: EasTranslation) -> None:
    builtin, kind = data.get("processor"), data.get("processor_type")
    if builtin is not None and kind is not None:
        out.fail(
            "processor_type",
            "give either 'processor' or 'processor_type', not both",
            ("processor",),
        )
        return
    if builtin is not None:
        if not isinstance(builtin, str):
            out.fail("processor", "must be a string", ("processor",))
            return
        match = _EAS_PROCESSOR.fullmatch(builtin.strip().lower())
        runtime = match.group(1) if match else builtin
        if match and runtime != builtin:
            out.warnings.append(
                f"processor: EAS processor '{builtin}' runs as Pier's '{runtime}' runtime"
            )
        out.put(("processor",), runtime, "processor")
        for key in ("processor_path", "processor_entry"):
            if key in data:
                out.warnings.append(f"{key}: only used with processor_type; ignored")
        return
    if kind is None:
        for key in ("processor_path", "processor_entry"):
            if key in data:
                out.fail(key, "needs processor_type: python")
        return
    if kind != "python":
        out.fail(
            "processor_type",
            f"Pier runs custom processors written in Python only, not '{kind}'",
            ("processor",),
        )
        return
    out.put(("processor",), "python", "processor_type")
    if "processor_path" in data:
        out.put(("code", "path"), data["processor_path"], "processor_path")
        if "processor_entry" in data:
            out.put(("code", "entry"), data["processor_entry"], "processor_entry")
    elif "processor_entry" in data:
        out.fail("processor_entry", "needs processor_path (the code's location)")


def _params(value: Any, out: EasTranslation) -> None:
    # EAS passes processor_params through to the processor; accept a mapping, or a list of
    # mappings / "key=value" strings that together make one.
    if isinstance(value, Mapping):
        out.put(("parameters",), dict(value), "processor_params")
        return
    if not isinstance(value, list):
        out.fail("processor_params", "must be a mapping or a list", ("parameters",))
        return
    merged: dict[str, Any] = {}
    for i, item in enumerate(value):
        if isinstance(item, Mapping):
            merged.update(item)
        elif isinstance(item, str) and "=" in item:
            key, _, val = item.partition("=")
            merged[key.strip()] = val.strip()
        else:
            out.fail(f"processor_params[{i}]", "list items must be mappings or 'key=value' strings")
    out.put(("parameters",), merged, "processor_params")


def _flatten(meta: Mapping[str, Any], out: EasTranslation) -> dict[str, Any]:
    """metadata with nested groups written flat ("rpc": {"batching": 1} → "rpc.batching")."""
    flat: dict[str, Any] = {}
    for raw_key, value in meta.items():
        key = str(raw_key)
        if key in _GROUPS:
            if not isinstance(value, Mapping):
                out.fail(f"metadata.{key}", "must be a mapping")
                continue
            for sub, sub_value in value.items():
                _add_flat(flat, f"{key}.{sub}", sub_value, out)
        else:
            _add_flat(flat, key, value, out)
    return flat


def _add_flat(flat: dict[str, Any], key: str, value: Any, out: EasTranslation) -> None:
    if key in flat:
        out.fail(f"metadata.{key}", "given twice (nested and flat)")
    flat[key] = value


def _metadata(meta: dict[str, Any], out: EasTranslation) -> None:
    for key in meta:
        if key in _IGNORED_META:
            out.warnings.append(f"metadata.{key}: valid on EAS but not used by Pier; ignored")
        elif key not in _MAPPED_META:
            out.fail(f"metadata.{key}", _unknown(key, _MAPPED_META | _IGNORED_META))
    simple = {
        "instance": ("replicas",),
        "cpu": ("resources", "cpu"),
        "gpu": ("resources", "gpu"),
        "memory": ("resources", "memory"),
    }
    for key, loc in simple.items():
        if key in meta:
            out.put(loc, meta[key], f"metadata.{key}")
    if "name" in meta:
        _meta_name(meta["name"], out)
    _batching(meta, out)


def _meta_name(name: Any, out: EasTranslation) -> None:
    current = out.data.get("name")
    if current is None:
        out.put(("name",), name, "metadata.name")
    elif current != name:
        out.fail("metadata.name", f"{_quoted(name)} differs from name {_quoted(current)}")


def _batching(meta: dict[str, Any], out: EasTranslation) -> None:
    enabled = meta.get("rpc.batching", False)
    if not isinstance(enabled, bool):
        out.fail("metadata.rpc.batching", "must be true or false", ("batching",))
        return
    out.origins[("batching",)] = "metadata.rpc.batching"
    fields = {
        "rpc.max_batch_size": "max_batch_size",
        "rpc.max_batch_timeout": "max_delay_ms",
        "rpc.max_queue_size": "max_queue_size",
    }
    if not enabled:
        for key in fields:
            if key in meta:
                out.warnings.append(
                    f"metadata.{key}: used only when metadata.rpc.batching is true; ignored"
                )
        return
    out.put(("batching",), {}, "metadata.rpc.batching")
    for key, pier_name in fields.items():
        if key in meta:
            out.put(("batching", pier_name), meta[key], f"metadata.{key}")
