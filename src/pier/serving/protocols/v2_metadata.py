"""Open Inference Protocol metadata documents: the server's and a model's (REST and gRPC alike)."""

from __future__ import annotations

from typing import Any

import pier
from pier.serving.served import ServedVersion

EXTENSIONS = [
    "binary_tensor_data",
    "classification",
    "model_configuration",
    "model_repository",
    "statistics",
]


def server_metadata() -> dict[str, Any]:
    return {"name": "pier", "version": pier.__version__, "extensions": EXTENSIONS}


def model_metadata(served: ServedVersion, versions: list[str]) -> dict[str, Any]:
    return {
        "name": served.name,
        "versions": versions,
        "platform": served.model.platform,
        "inputs": [t.as_json() for t in served.model.inputs],
        "outputs": [t.as_json() for t in served.model.outputs],
    }
