"""A real S3-compatible server process on 127.0.0.1 for the tests: moto's standalone server.

    server = S3Server(log_dir)       # starts ``python -m moto.server`` on a free port
    server.wait_ready()
    server.create_bucket("models")
    options = server.options()       # StorageOptions pointing at it (dummy credentials)
    env = server.env()               # the same as AWS_* variables, for a child process
    server.requests("GET", "/models/resnet/1/model.onnx")  # count from its request log
    server.stop()

Every request the server answers is in its log; ``requests`` counts them, so a test
can check that a model was downloaded once.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from pier.storage import StorageOptions
from tests.integration.server import free_port

REGION = "us-east-1"
KEY = "testing-key-id"
SECRET = "testing-secret-key"

_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_REQUEST = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[0-9.]+" (?P<status>\d{3})')


class S3Server:
    """``python -m moto.server`` on a free port, its log in ``log_dir``."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_dir) / f"moto-{self.port}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 30.0) -> S3Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto server exited with {self.proc.returncode}:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "/", timeout=1):
                    return self
            except urllib.error.HTTPError:
                return self  # it answers: ready
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.05)
        raise TimeoutError(f"moto server not ready after {timeout}s:\n{self.log()}")

    # -- clients -----------------------------------------------------------------

    def options(self, **overrides: Any) -> StorageOptions:
        """Storage options for this server: endpoint, region, dummy credentials."""
        values: dict[str, Any] = {
            "endpoint_url": self.url,
            "region": REGION,
            "key": KEY,
            "secret": SECRET,
            "timeout": 5.0,
        }
        values.update(overrides)
        return StorageOptions(**values)

    def env(self) -> dict[str, str]:
        """The standard AWS variables that point a process (or ``from_env``) here."""
        return {
            "AWS_ENDPOINT_URL_S3": self.url,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET,
        }

    def client(self, service: str = "s3", **credentials: str) -> Any:
        """A boto3 client for this server (boto3 comes with moto)."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id=credentials.get("key", KEY),
            aws_secret_access_key=credentials.get("secret", SECRET),
        )

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def put(self, bucket: str, key: str, body: bytes) -> None:
        self.client().put_object(Bucket=bucket, Key=key, Body=body)

    # -- server controls ---------------------------------------------------------

    def reset(self) -> None:
        """Forget every bucket, object and user."""
        self._post("/moto-api/reset", b"")

    def enforce_auth(self, enabled: bool = True) -> None:
        """Check credentials and IAM permissions from now on (moto accepts anything by default)."""
        self._post("/moto-api/reset-auth", b"0" if enabled else b"inf")

    def create_user(self, name: str) -> tuple[str, str]:
        """An IAM user with no permissions; returns its access key id and secret."""
        iam = self.client("iam")
        iam.create_user(UserName=name)
        key = iam.create_access_key(UserName=name)["AccessKey"]
        return str(key["AccessKeyId"]), str(key["SecretAccessKey"])

    def _post(self, path: str, body: bytes) -> None:
        request = urllib.request.Request(
            self.url + path, data=body, method="POST", headers={"Content-Type": "text/plain"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            json.loads(response.read() or b"{}")

    # -- observing ---------------------------------------------------------------

    def log(self) -> str:
        self._log.flush()
        return _ANSI.sub("", self.log_path.read_text(errors="replace"))

    def requests(self, method: str, path: str) -> int:
        """How many ``method`` requests for exactly ``path`` (query ignored) the server logged."""
        count = 0
        for match in _REQUEST.finditer(self.log()):
            if match["method"] == method and match["path"].split("?")[0] == path:
                count += 1
        return count

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()

    def __enter__(self) -> S3Server:
        return self.wait_ready()

    def __exit__(self, *exc: object) -> None:
        self.stop()
