"""``import pier.storage`` loads no storage backend: they come with the first URI of their scheme."""

from __future__ import annotations

import subprocess
import sys

BACKENDS = (
    "s3fs",
    "botocore",
    "boto3",
    "aiobotocore",
    "aiohttp",
    "gcsfs",
    "ossfs",
    "pyarrow",
    "tqdm",
)


def test_import_loads_no_backend() -> None:
    code = (
        "import sys\n"
        "import pier.storage, pier.storage.cache, pier.storage.transfer, pier.storage.remote\n"
        f"print(','.join(m for m in {BACKENDS!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_api() -> None:
    import pier.storage

    assert sorted(pier.storage.__all__) == sorted(
        [
            "SCHEMES", "CacheEntry", "Entry", "ModelCache", "PushResult", "StorageOptions",
            "StorageURI", "Tree", "exists", "extract", "identity", "is_archive", "list_dirs",
            "ls", "open_filesystem", "parse_uri", "push", "read_bytes", "redact", "tree",
        ]
    )  # fmt: skip
