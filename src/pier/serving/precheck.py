"""What can be told about a model before any replica starts: it exists, holds files, has a runtime.

A control plane calls this when a spec is created or updated, so that a model path with a
typo is a 400 naming ``model`` instead of replicas that crash-loop. It reads the same layout
``pier serve --model NAME=URI`` reads (numbered version folders, a flat folder, one file)
and names the runtime the same way, without importing any runtime library. Remote URIs are
left to the replica: asking a store costs a network round trip and credentials the control
plane may not hold, and a replica that cannot read its model fails fast (see supervise).
"""

from __future__ import annotations

from pathlib import Path

from pier.errors import PierError
from pier.serving.modelconfig import CONFIG_FILENAMES, load_config
from pier.serving.runtimes import infer_runtime
from pier.serving.sources import version_numbers
from pier.spec import ServiceSpec
from pier.storage import parse_uri


def spec_problems(spec: ServiceSpec) -> list[tuple[str, str]]:
    """``(field path, message)`` for each local location in the spec a replica could not use."""
    problems = []
    model = model_problem(spec.model, spec.processor)
    if model is not None:
        problems.append(("model", model))
    code = code_problem(spec.code.path) if spec.code is not None else None
    if code is not None:
        problems.append(("code.path", code))
    return problems


def model_problem(location: str, runtime: str | None) -> str | None:
    """Why a replica could not serve the model at a local ``location``; None when it may.

    ``runtime`` is the spec's processor (None: inferred from the files, as the replica does).
    """
    path = _local_path(location)
    if path is None:
        return None
    try:
        if path.is_file():
            return None  # one file: its runtime is read from the spec or its suffix on load
        if not path.is_dir():
            return f"{location}: no such file or folder (on the machine that runs the replicas)"
        children = list(path.iterdir())
        versions = version_numbers([p.name for p in children if p.is_dir()])
        folder = path / str(versions[-1]) if versions else path
        if not versions and not any(
            p.is_file() and p.name not in CONFIG_FILENAMES for p in children
        ):
            return f"{location}: holds no model files and no numbered version folders"
        if runtime is None and load_config(path).runtime is None:
            infer_runtime(folder)
    except PierError as exc:
        return exc.message
    except OSError as exc:
        return f"{location}: cannot be read ({exc.strerror})"
    return None


def code_problem(location: str) -> str | None:
    """Why a python processor's code at a local ``location`` cannot be read; None when it can."""
    path = _local_path(location)
    if path is None or path.exists():
        return None
    return f"{location}: no such file or folder (on the machine that runs the replicas)"


def _local_path(location: str) -> Path | None:
    try:
        uri = parse_uri(location)
    except PierError:
        return None  # the spec's own validation speaks about malformed URIs
    return Path(uri.path) if uri.is_local else None
