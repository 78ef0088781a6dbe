"""``pier.spec`` is a leaf: it pulls in none of the planes, and its public API stays put."""

from __future__ import annotations

import subprocess
import sys

import pier.spec


def test_spec_imports_no_plane() -> None:
    code = (
        "import sys, pier.spec, pier.cli.spec_cmd\n"
        "print(','.join(m for m in sys.modules if m.startswith(('pier.serving', 'pier.control', 'pier.gateway'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_api() -> None:
    assert sorted(pier.spec.__all__) == [
        "Batching",
        "PLANNED_PROCESSORS",
        "PROCESSORS",
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
