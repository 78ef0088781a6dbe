"""Build hook: generate Pier's gRPC modules from the .proto files while the package builds.

Everything else about the package is declared in pyproject.toml. ``build_py`` runs in
wheel builds (where the modules are written into the build directory, so the wheel
carries them) and, with setuptools' ``editable_mode``, in editable installs (where they
are written next to the .proto files in the source tree).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
PROTO_PACKAGE = "pier.serving.protocols.grpc.protos"
GENERATOR = ROOT / "src" / "pier" / "serving" / "protocols" / "grpc" / "generate.py"


def _generator() -> ModuleType:
    # Loaded by path: Pier itself is not importable while it is being built.
    spec = importlib.util.spec_from_file_location("_pier_grpc_generate", GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildPyWithProtos(build_py):
    """``build_py`` that ships the .proto files and compiles them with grpcio-tools."""

    def finalize_options(self) -> None:
        super().finalize_options()
        # The .proto sources are package data (generate.py reads them in an installed
        # Pier too). Declared here because pyproject.toml's package-data would replace,
        # not extend, a package_data given to setup().
        self.package_data.setdefault(PROTO_PACKAGE, []).append("**/*.proto")

    def run(self) -> None:
        super().run()
        generate = _generator().generate
        out_root = ROOT / "src" if self.editable_mode else Path(self.build_lib)
        written = generate(out_root)
        self.announce(f"generated {len(written)} gRPC modules under {out_root}", level=2)


setup(cmdclass={"build_py": BuildPyWithProtos})
