"""Service specs: what a user asks Pier to run, in Pier's form or the PAI-EAS form. Pure data."""

from __future__ import annotations

from pier.spec.derive import resolve_local_paths, spec_digest, spec_schema, to_model_config
from pier.spec.parse import ParsedSpec, load_spec_bytes, parse_spec
from pier.spec.service import (
    PLANNED_PROCESSORS,
    PROCESSORS,
    Batching,
    PythonCode,
    Resources,
    ServiceSpec,
    VersionPolicySpec,
)
from pier.spec.units import parse_memory_mib

__all__ = [
    "PLANNED_PROCESSORS",
    "PROCESSORS",
    "Batching",
    "ParsedSpec",
    "PythonCode",
    "Resources",
    "ServiceSpec",
    "VersionPolicySpec",
    "load_spec_bytes",
    "parse_memory_mib",
    "parse_spec",
    "resolve_local_paths",
    "spec_digest",
    "spec_schema",
    "to_model_config",
]
