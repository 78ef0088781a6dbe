"""What other parts of Pier derive from a valid spec: absolute paths, model config, digest, schema."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from pier.spec.service import ServiceSpec, uri_scheme

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _absolute(location: str, base_dir: Path) -> str:
    if uri_scheme(location) is not None:
        return location
    path = Path(location).expanduser()
    if path.is_absolute():
        return location
    # normpath, not resolve(): symlinks in the user's tree stay as they wrote them.
    return os.path.normpath(base_dir.absolute() / path)


def resolve_local_paths(spec: ServiceSpec, base_dir: Path) -> ServiceSpec:
    """The spec with relative local paths (model, python code) made absolute against base_dir."""
    update: dict[str, Any] = {"model": _absolute(spec.model, base_dir)}
    if spec.code is not None:
        update["code"] = spec.code.model_copy(update={"path": _absolute(spec.code.path, base_dir)})
    return spec.model_copy(update=update)


def to_model_config(spec: ServiceSpec) -> dict[str, Any]:
    """The per-model config a replica server reads (the shape of a model folder's config.yaml)."""
    config: dict[str, Any] = {}
    if spec.processor is not None:
        config["runtime"] = spec.processor
    config["parameters"] = dict(spec.parameters)
    if spec.code is not None:
        # The python runtime reads its code from here instead of the version folder.
        config["parameters"]["code_path"] = spec.code.path
        if spec.code.entry:
            config["parameters"]["entry"] = spec.code.entry
    if spec.batching is not None:
        config["dynamic_batching"] = {
            "max_batch_size": spec.batching.max_batch_size,
            "max_queue_delay_ms": spec.batching.max_delay_ms,
            "preferred_batch_sizes": list(spec.batching.preferred_batch_sizes),
            "max_queue_size": spec.batching.max_queue_size,
        }
    if spec.version_policy is not None:
        config["version_policy"] = spec.version_policy.model_dump(exclude_none=True)
    return config


def spec_digest(spec: ServiceSpec) -> str:
    """sha256 of the spec's canonical JSON: equal digests mean nothing changed."""
    canonical = json.dumps(
        spec.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def spec_schema() -> dict[str, Any]:
    """JSON Schema of Pier's spec form."""
    schema = ServiceSpec.model_json_schema()
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "Pier service spec",
        **{k: v for k, v in schema.items() if k != "title"},
        "description": (
            "A named inference service: model URI, processor, replicas, resources, batching. "
            "Written as JSON or YAML. The Alibaba PAI-EAS service description (model_path, "
            "processor, processor_params, metadata.instance/cpu/gpu/memory, metadata.rpc.*) is "
            "also accepted and mapped onto this form; this schema describes Pier's form only."
        ),
    }
