"""The model repository extension: index rows, and the load action's config override."""

from __future__ import annotations

from typing import Any

import orjson

from pier.errors import InvalidInput
from pier.serving.modelconfig import ModelConfig, parse_config
from pier.serving.status import VersionStatus


def repository_index(
    index: list[tuple[str, VersionStatus | None]], ready_only: bool
) -> list[dict[str, Any]]:
    """The repository extension's index rows, from the data plane's ``index()``."""
    rows: list[dict[str, Any]] = []
    for name, status in index:
        if status is None:
            if not ready_only:
                rows.append({"name": name, "state": "UNAVAILABLE", "reason": "not loaded"})
            continue
        if ready_only and status.state.v2 != "READY":
            continue
        row: dict[str, Any] = {
            "name": name,
            "version": str(status.version),
            "state": status.state.v2,
        }
        if status.reason:
            row["reason"] = status.reason
        rows.append(row)
    return rows


def load_override(name: str, params: dict[str, Any]) -> ModelConfig | None:
    """The repository extension's load parameters: an optional ``config`` JSON override."""
    if "config" not in params:
        return None
    text = params["config"]
    try:
        data = orjson.loads(text) if isinstance(text, str | bytes) else text
    except orjson.JSONDecodeError as exc:
        raise InvalidInput(f"load: parameters.config is not valid JSON: {exc}") from None
    return parse_config(data, f"load '{name}': parameters.config")
