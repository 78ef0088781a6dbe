"""TF Serving metadata documents: model status, signature defs, and the one signature served."""

from __future__ import annotations

from typing import Any

from pier.errors import NotFound
from pier.serving.served import ServedVersion
from pier.serving.status import VersionStatus
from pier.serving.tensors import TensorSpec

SIGNATURE = "serving_default"


_TF_DTYPES = {
    "BOOL": "DT_BOOL",
    "UINT8": "DT_UINT8",
    "UINT16": "DT_UINT16",
    "UINT32": "DT_UINT32",
    "UINT64": "DT_UINT64",
    "INT8": "DT_INT8",
    "INT16": "DT_INT16",
    "INT32": "DT_INT32",
    "INT64": "DT_INT64",
    "FP16": "DT_HALF",
    "BF16": "DT_BFLOAT16",
    "FP32": "DT_FLOAT",
    "FP64": "DT_DOUBLE",
    "BYTES": "DT_STRING",
}


def model_status(statuses: list[VersionStatus]) -> list[dict[str, Any]]:
    """TF Serving's model_version_status entries."""
    return [
        {
            "version": str(s.version),
            "state": s.state.tfserving,
            "status": {"error_code": "UNKNOWN" if s.reason else "OK", "error_message": s.reason},
        }
        for s in statuses
    ]


def _tensor_info(t: TensorSpec) -> dict[str, Any]:
    return {
        "dtype": _TF_DTYPES.get(t.datatype, "DT_INVALID"),
        "tensor_shape": {
            "dim": [{"size": str(d), "name": ""} for d in t.shape],
            "unknown_rank": False,
        },
        "name": t.name,
    }


def signature_defs(served: ServedVersion) -> dict[str, Any]:
    """The SignatureDefMap of a model: one ``serving_default`` predict signature."""
    signature = {
        "inputs": {t.name: _tensor_info(t) for t in served.model.inputs},
        "outputs": {t.name: _tensor_info(t) for t in served.model.outputs},
        "method_name": "tensorflow/serving/predict",
    }
    return {"signature_def": {SIGNATURE: signature}}


def check_signature(name: str) -> None:
    if name not in (SIGNATURE, ""):
        raise NotFound(
            f'Serving signature name: "{name}" not found in signature def; use "{SIGNATURE}"'
        )
