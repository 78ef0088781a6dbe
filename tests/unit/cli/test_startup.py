"""`pier --help` and `pier list` import only what they need: no web stack, no planes.

Measured on an idle machine: `pier --help` 0.07 s and `pier list` 0.12 s (0.7-0.9 s before).
"""

from __future__ import annotations

import json
import subprocess
import sys

from tests.unit.cli.apiserver import TOKEN

# What no `pier --help` or `pier list` may import: the web stack, the planes' libraries.
HEAVY = (
    "fastapi",
    "starlette",
    "pydantic",
    "pydantic_settings",
    "httpx",
    "httpcore",
    "anyio",
    "sqlalchemy",
    "numpy",
    "uvicorn",
    "grpc",
    "orjson",
    "yaml",
    "fsspec",
)
# Python and click are ~95 modules, `pier --help` ~110, `pier list` ~170 (440 before).
MAX_MODULES = 200


def _modules_after(args: list[str]) -> dict[str, object]:
    """Run `pier ARGS` in a fresh interpreter; what it printed and the modules it imported."""
    code = (
        "import io, json, sys, contextlib\n"
        "from pier.cli.main import cli\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    try:\n"
        f"        cli.main({args!r}, prog_name='pier')\n"
        "    except SystemExit as exc:\n"
        "        code = exc.code\n"
        "print(json.dumps({'code': code, 'out': out.getvalue(), 'modules': sorted(sys.modules)}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    result: dict[str, object] = json.loads(done.stdout)
    return result


def _heavy(modules: list[str]) -> list[str]:
    return sorted({m.split(".")[0] for m in modules} & set(HEAVY))


def test_help_imports_no_command_module() -> None:
    run = _modules_after(["--help"])
    assert run["code"] == 0 and "revisions" in str(run["out"])
    modules: list[str] = run["modules"]  # type: ignore[assignment]
    assert _heavy(modules) == []
    assert [m for m in modules if m.startswith("pier.cli.") and m != "pier.cli.main"] == []
    assert len(modules) < MAX_MODULES, len(modules)


def test_list_imports_only_what_it_needs(api: str) -> None:
    run = _modules_after(["list", "--api", api, "--token", TOKEN])
    assert run["code"] == 0  # no services: a message on stderr, nothing on stdout
    modules: list[str] = run["modules"]  # type: ignore[assignment]
    assert _heavy(modules) == []
    assert not any(
        m.startswith(("pier.control.api", "pier.serving", "pier.gateway")) for m in modules
    )
    assert len(modules) < MAX_MODULES, len(modules)
