"""The model configuration extension: a Triton-style ModelConfig document of a served version."""

from __future__ import annotations

from typing import Any

from pier.serving.served import ServedVersion


def model_config(served: ServedVersion) -> dict[str, Any]:
    """A Triton-style ModelConfig JSON (what perf_analyzer and tritonclient read)."""
    cfg = served.config
    batching = cfg.dynamic_batching
    max_batch = batching.max_batch_size if batching is not None else 0

    def dims(shape: tuple[int, ...]) -> list[int]:
        return list(shape[1:]) if max_batch > 0 else list(shape)

    data: dict[str, Any] = {
        "name": served.name,
        "platform": served.model.platform,
        "backend": served.model.runtime,
        "max_batch_size": max_batch,
        "input": [
            {"name": t.name, "data_type": _triton_type(t.datatype), "dims": dims(t.shape)}
            for t in served.model.inputs
        ],
        "output": [
            {"name": t.name, "data_type": _triton_type(t.datatype), "dims": dims(t.shape)}
            for t in served.model.outputs
        ],
        "instance_group": [{"name": served.name, "kind": "KIND_CPU", "count": cfg.instances}],
        "model_transaction_policy": {"decoupled": False},
        "version_policy": _version_policy(served),
        "parameters": {k: {"string_value": str(v)} for k, v in cfg.parameters.items()},
    }
    if batching is not None:
        data["dynamic_batching"] = {
            "preferred_batch_size": batching.preferred_batch_sizes,
            "max_queue_delay_microseconds": int(batching.max_queue_delay_ms * 1000),
        }
    return data


def _triton_type(datatype: str) -> str:
    return "TYPE_STRING" if datatype == "BYTES" else f"TYPE_{datatype}"


def _version_policy(served: ServedVersion) -> dict[str, Any]:
    policy = served.config.version_policy
    if policy.all:
        return {"all": {}}
    if policy.specific is not None:
        return {"specific": {"versions": policy.specific}}
    return {"latest": {"num_versions": policy.latest or 1}}
