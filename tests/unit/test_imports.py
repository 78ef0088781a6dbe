"""`import pier` and the server modules stay light: heavy libraries load only when used."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "onnxruntime", "onnx", "sklearn", "xgboost", "lightgbm", "grpc", "kubernetes", "boto3")


def test_server_modules_import_no_heavy_library() -> None:
    code = (
        "import sys\n"
        "import pier, pier.cli.main, pier.serving.server, pier.serving.protocols.rest\n"
        f"heavy = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_version_is_exposed() -> None:
    import pier

    assert pier.__version__.count(".") == 2


def test_client_imports_no_plane() -> None:
    """The SDK talks HTTP to the control plane; it must not pull in a plane's code."""
    code = (
        "import sys\n"
        "import pier.client, pier.client.api\n"
        "planes = ('pier.control', 'pier.serving', 'pier.gateway')\n"
        "print(','.join(m for m in sys.modules if m.startswith(planes)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
