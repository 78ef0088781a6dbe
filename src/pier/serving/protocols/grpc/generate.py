"""Compile the gRPC .proto sources into Python modules with grpcio-tools' protoc.

Run ``python -m pier.serving.protocols.grpc.generate`` after an editable install (the
Makefile does); wheel builds run it from ``setup.py``. The protos import each other by
paths from the ``src/`` root (``pier/serving/protocols/grpc/protos/...``), so the
generated modules live under ``pier.serving.protocols.grpc.protos`` and never create
top-level ``tensorflow`` or ``inference`` packages, while the proto packages (and so
the wire names and method paths) stay TensorFlow's, TF Serving's and Triton's.

This module uses only the standard library at import time: ``setup.py`` loads it by
path, before Pier is installed, and grpcio-tools is needed only when protoc runs.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

PROTO_DIR = Path(__file__).resolve().parent / "protos"
# The directory that holds ``pier/``: ``src/`` in a checkout, site-packages when installed.
SOURCE_ROOT = PROTO_DIR.parents[4]
PREFIX = PROTO_DIR.relative_to(SOURCE_ROOT).as_posix() + "/"
GENERATED = ("*_pb2.py", "*_pb2.pyi", "*_pb2_grpc.py")

_SERVICE = re.compile(r"^\s*service\s+\w+", re.MULTILINE)
_IMPORT = re.compile(r'^(\s*import\s+(?:public\s+|weak\s+)?")' + re.escape(PREFIX), re.MULTILINE)


def proto_files() -> list[Path]:
    """Every .proto source, in a stable order."""
    return sorted(PROTO_DIR.rglob("*.proto"))


def generate(out_root: Path = SOURCE_ROOT) -> list[Path]:
    """Write the ``*_pb2`` modules (and ``*_pb2_grpc`` for services) under ``out_root``.

    ``out_root`` mirrors the source root: the module for ``protos/x/y.proto`` goes to
    ``out_root/pier/serving/protocols/grpc/protos/x/y_pb2.py``. Modules generated
    before are removed first, so a renamed or deleted proto leaves nothing behind.
    Returns the files written.
    """
    out_root = out_root.resolve()
    out_dir = out_root / PROTO_DIR.relative_to(SOURCE_ROOT)
    for pattern in GENERATED:
        for stale in out_dir.rglob(pattern):
            stale.unlink()
    sources = proto_files()
    services = [p for p in sources if _SERVICE.search(p.read_text(encoding="utf-8"))]
    names = [p.relative_to(SOURCE_ROOT).as_posix() for p in sources]
    service_names = [p.relative_to(SOURCE_ROOT).as_posix() for p in services]
    out_root.mkdir(parents=True, exist_ok=True)
    # Messages and type stubs for every file; gRPC stubs only where there is a service
    # (protoc's gRPC plugin would otherwise write an empty module per file).
    _protoc([f"--python_out={out_root}", f"--pyi_out={out_root}", *names])
    _protoc([f"--grpc_python_out={out_root}", *service_names])
    for source in sources:  # the packages the modules land in (already there in a checkout)
        package = out_root / source.parent.relative_to(SOURCE_ROOT)
        while True:
            init = package / "__init__.py"
            if not init.exists():
                init.write_text("", encoding="utf-8")
            if package == out_dir:
                break
            package = package.parent
    return sorted(p for pattern in GENERATED for p in out_dir.rglob(pattern))


def well_known_include() -> Path:
    """The include folder for ``google/protobuf/*.proto`` (any, wrappers), from grpcio-tools.

    ``python -m grpc_tools.protoc`` adds it by itself; ``grpc_tools.protoc.main`` does not.
    """
    return Path(_grpc_tools_protoc().__file__).resolve().parent / "_proto"


def _grpc_tools_protoc() -> Any:
    try:
        from grpc_tools import protoc
    except ImportError:
        raise SystemExit(
            "grpcio-tools is not installed; install it (pip install grpcio-tools) to "
            "generate Pier's gRPC modules"
        ) from None
    return protoc


def _protoc(args: list[str]) -> None:
    argv = ["grpc_tools.protoc", f"-I{SOURCE_ROOT}", f"-I{well_known_include()}", *args]
    if _grpc_tools_protoc().main(argv) != 0:
        raise SystemExit(f"protoc failed: {' '.join(argv)}")


def write_upstream_layout(dest: Path) -> None:
    """Copy the protos to ``dest`` with the ``pier/.../protos/`` import prefix stripped.

    The result is laid out as TF Serving's own sources are
    (``tensorflow_serving/apis/predict.proto`` importing
    ``tensorflow/core/framework/tensor.proto``; Triton's two files go to ``inference/``),
    so ``protoc -I dest -I well_known_include()`` compiles it into the top-level
    ``tensorflow``, ``tensorflow_serving`` and ``inference`` packages that a client of
    those servers has. Those register the same protobuf names as Pier's modules, so
    they cannot be imported into a process that has imported Pier's.
    """
    for source in proto_files():
        target = dest / source.relative_to(PROTO_DIR)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(_IMPORT.sub(r"\1", source.read_text(encoding="utf-8")), "utf-8")


def main(argv: list[str] | None = None) -> int:
    """Command line: generate into the source tree, or into ``--out``."""
    parser = argparse.ArgumentParser(
        prog="python -m pier.serving.protocols.grpc.generate", description=__doc__
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=SOURCE_ROOT,
        help="root to write under, in place of the source root (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    written = generate(args.out)
    print(f"generated {len(written)} files under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
