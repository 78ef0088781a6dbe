"""Storage against real servers on 127.0.0.1: moto's S3 server process and a local HTTP server."""

from __future__ import annotations

import base64
import hashlib
import io
import socket
import subprocess
import sys
import tarfile
import threading
import time
import uuid
import zipfile
from collections import Counter
from collections.abc import Iterator
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pier.errors import (
    ArchiveError,
    StorageAccessDenied,
    StorageIntegrityError,
    StorageNotFound,
    StorageTimeout,
    StorageUnavailable,
)
from pier.storage import (
    ModelCache,
    StorageOptions,
    exists,
    identity,
    list_dirs,
    ls,
    push,
    read_bytes,
)
from tests.integration.s3server import S3Server, free_port

# -- servers ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    with S3Server(tmp_path_factory.mktemp("moto")) as server:
        yield server


@pytest.fixture
def bucket(s3: S3Server) -> str:
    name = f"models-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(name)
    return name


class FileServer(ThreadingHTTPServer):
    """Serves ``files`` (path -> body, extra headers), counts requests, may answer slowly."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.files: dict[str, tuple[bytes, dict[str, str]]] = {}
        self.counts: Counter[tuple[str, str]] = Counter()
        self.delay = 0.0
        self.lock = threading.Lock()
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def put(self, path: str, body: bytes, **headers: str) -> str:
        headers.setdefault("Last-Modified", formatdate(time.time(), usegmt=True))
        self.files[path] = (body, headers)
        return self.url + path

    def gets(self, path: str) -> int:
        return self.counts[("GET", path)]


class Handler(BaseHTTPRequestHandler):
    server: FileServer

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def do_GET(self) -> None:
        self._answer(body=True)

    def _answer(self, body: bool) -> None:
        with self.server.lock:
            self.server.counts[(self.command, self.path)] += 1
        found = self.server.files.get(self.path)
        if found is None:
            self.send_error(404)
            return
        data, headers = found
        if body and self.server.delay:
            time.sleep(self.server.delay)  # long enough for concurrent fetches to overlap
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if body:
            self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def http() -> Iterator[FileServer]:
    server = FileServer()
    thread = threading.Thread(
        target=server.serve_forever, args=(0.05,), name="test-http", daemon=True
    )
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def tar_gz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def content_md5(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


def write_model(root: Path, version: int, data: bytes) -> Path:
    (root / "resnet" / str(version)).mkdir(parents=True, exist_ok=True)
    (root / "resnet" / str(version) / "model.onnx").write_bytes(data)
    (root / "resnet" / "config.json").write_text('{"runtime": "onnx"}')
    return root


# -- S3 --------------------------------------------------------------------------


def test_s3_push_list_read_and_fetch(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    options = s3.options()
    local = write_model(tmp_path / "local", 1, b"v1" * 1000)
    base = f"s3://{bucket}/models"

    pushed = push(local, base, options)
    assert sorted(pushed.uploaded) == ["resnet/1/model.onnx", "resnet/config.json"]
    assert push(local, base, options).uploaded == []  # unchanged: nothing sent

    assert list_dirs(f"{base}/resnet", options) == ["1"]
    assert [(e.name, e.is_dir) for e in ls(f"{base}/resnet", options)] == [
        ("1", True),
        ("config.json", False),
    ]
    assert read_bytes(f"{base}/resnet/config.json", options) == b'{"runtime": "onnx"}'
    assert read_bytes(f"{base}/resnet/missing.json", options) is None
    assert exists(f"{base}/resnet/1", options) and not exists(f"{base}/resnet/2", options)

    cache = ModelCache(tmp_path / "cache", max_bytes=10**8)
    path = cache.fetch(f"{base}/resnet/1", options)
    assert (path / "model.onnx").read_bytes() == b"v1" * 1000
    assert cache.fetch(f"{base}/resnet/1", options) == path
    key = f"/{bucket}/models/resnet/1/model.onnx"
    assert _eventually(lambda: s3.requests("GET", key)) == 1  # the second fetch read the cache

    # A new version appears: the listing fingerprint changes without downloading anything.
    before = identity(f"{base}/resnet", options)
    write_model(local, 2, b"v2" * 1000)
    assert push(local, base, options).uploaded == ["resnet/2/model.onnx"]
    assert identity(f"{base}/resnet", options) != before
    assert list_dirs(f"{base}/resnet", options) == ["1", "2"]


def test_s3_changed_object_is_downloaded_again(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    options = s3.options()
    uri = f"s3://{bucket}/resnet/model.onnx"
    cache = ModelCache(tmp_path / "cache", max_bytes=10**8)
    s3.put(bucket, "resnet/model.onnx", b"old weights")
    old = cache.fetch(uri, options)
    assert old.name == "model.onnx" and old.read_bytes() == b"old weights"
    cache.release(old)

    s3.put(bucket, "resnet/model.onnx", b"new weights!")
    new = cache.fetch(uri, options)
    assert new != old and new.read_bytes() == b"new weights!"
    # The superseded copy went as soon as nobody held it.
    assert [e.path for e in cache.entries()] == [new]


def test_s3_folder_and_archive(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    options = s3.options()
    s3.put(bucket, "a/model.tar.gz", tar_gz({"1/model.onnx": b"tarred"}))
    s3.put(bucket, "b/x/y/deep.bin", b"deep")
    s3.put(bucket, "b/top.bin", b"top")
    cache = ModelCache(tmp_path / "cache", max_bytes=10**8)
    extracted = cache.fetch(f"s3://{bucket}/a/model.tar.gz", options)
    assert (extracted / "1" / "model.onnx").read_bytes() == b"tarred"
    folder = cache.fetch(f"s3://{bucket}/b", options)
    assert (folder / "x" / "y" / "deep.bin").read_bytes() == b"deep"
    assert (folder / "top.bin").read_bytes() == b"top"


def test_s3_options_from_the_aws_environment(s3: S3Server, bucket: str) -> None:
    s3.put(bucket, "m/config.json", b"{}")
    options = StorageOptions.from_env({"timeout": 5}, env=s3.env())
    assert options.endpoint_url == s3.url
    assert read_bytes(f"s3://{bucket}/m/config.json", options) == b"{}"


def test_s3_not_found_names_the_uri(s3: S3Server, bucket: str, tmp_path: Path) -> None:
    options = s3.options()
    cache = ModelCache(tmp_path / "cache", max_bytes=10**8)
    with pytest.raises(
        StorageNotFound, match=rf"s3://{bucket}/nothing/here: listing failed: not found"
    ):
        cache.fetch(f"s3://{bucket}/nothing/here", options)
    with pytest.raises(StorageNotFound, match="s3://no-such-bucket-x"):
        list_dirs("s3://no-such-bucket-x/models", options)
    assert cache.entries() == []


def test_s3_access_denied(tmp_path: Path) -> None:
    # Its own server: enforcing credentials is global to a moto process.
    with S3Server(tmp_path) as server:
        server.create_bucket("private")
        server.put("private", "m/model.onnx", b"secret weights")
        key, secret = server.create_user("nobody")  # exists, has no permission
        server.enforce_auth()
        cases = [
            server.options(key=key, secret=secret),
            server.options(key="AKIAUNKNOWNKEY000000", secret="wrong-secret-value"),
        ]
        for options in cases:
            with pytest.raises(StorageAccessDenied) as info:
                read_bytes("s3://private/m/model.onnx", options)
            text = str(info.value)
            assert text.startswith("s3://private/m/model.onnx: reading failed: access denied")
            assert info.value.code == "permission_denied"
            assert options.secret is not None and options.secret not in text
            assert options.key is not None and options.key not in text


def test_s3_unreachable_endpoint_fails_fast(tmp_path: Path) -> None:
    port = free_port()  # nothing listens there
    options = StorageOptions(
        endpoint_url=f"http://127.0.0.1:{port}",
        key="AKIAIOSFODNN7EXAMPLE",
        secret="unreachable-secret",
        region="us-east-1",
        timeout=1,
        retries=1,
    )
    cache = ModelCache(tmp_path / "cache", max_bytes=10**8)
    started = time.monotonic()
    with pytest.raises(StorageUnavailable) as info:
        cache.fetch("s3://bucket/models/resnet", options)
    assert time.monotonic() - started < 10
    text = str(info.value)
    assert text.startswith("s3://bucket/models/resnet: listing failed: endpoint unreachable")
    assert f"127.0.0.1:{port}" in text
    assert "unreachable-secret" not in text and "AKIAIOSFODNN7EXAMPLE" not in text
    assert info.value.code == "unavailable"


@pytest.fixture
def black_hole() -> Iterator[str]:
    """An address that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"127.0.0.1:{sock.getsockname()[1]}"


def test_silent_store_times_out(black_hole: str, tmp_path: Path) -> None:
    cache = ModelCache(tmp_path / "cache", max_bytes=10**8)
    options = StorageOptions(
        endpoint_url=f"http://{black_hole}", key="AKIAIOSFODNN7EXAMPLE", secret="s" * 20,
        region="us-east-1", timeout=0.5, retries=1,
    )  # fmt: skip
    for uri, opts in ((f"http://{black_hole}/m.onnx", options), ("s3://bucket/m", options)):
        started = time.monotonic()
        with pytest.raises(StorageTimeout, match=rf"^{uri}: listing failed: timed out after 0.5s"):
            cache.fetch(uri, opts)
        assert time.monotonic() - started < 5


def test_s3_multipart_upload_is_recognized_unchanged(
    s3: S3Server, bucket: str, tmp_path: Path
) -> None:
    options = s3.options()
    local = tmp_path / "big"
    local.mkdir()
    (local / "weights.bin").write_bytes(bytes(range(256)) * (11 * 4096))  # 11 MiB
    part = 5 * 1024 * 1024
    assert push(local, f"s3://{bucket}/big", options, part_size=part).uploaded == ["weights.bin"]
    (entry,) = ls(f"s3://{bucket}/big", options)
    assert entry.size == 11 * 2**20
    # A multipart ETag is no MD5: push finds the one it recorded in the object metadata.
    assert push(local, f"s3://{bucket}/big", options, part_size=part).skipped == ["weights.bin"]
    cache = ModelCache(tmp_path / "cache", max_bytes=10**8)
    path = cache.fetch(f"s3://{bucket}/big/weights.bin", options)
    assert path.read_bytes() == (local / "weights.bin").read_bytes()


# -- HTTP ------------------------------------------------------------------------


def test_http_file_and_archives(http: FileServer, tmp_path: Path) -> None:
    cache = ModelCache(tmp_path / "cache", max_bytes=10**8)
    model = http.put("/m/model.onnx", b"onnx bytes", **{"Content-MD5": content_md5(b"onnx bytes")})
    assert cache.fetch(model).read_bytes() == b"onnx bytes"
    files = {"1/model.onnx": b"in an archive", "config.json": b"{}"}
    for suffix, body in (
        (".tar.gz", tar_gz(files)),
        (".tgz", tar_gz(files)),
        (".zip", zip_bytes(files)),
    ):
        folder = cache.fetch(http.put(f"/m/model{suffix}", body))
        assert (folder / "1" / "model.onnx").read_bytes() == b"in an archive"
        assert (folder / "config.json").read_bytes() == b"{}"


def test_http_checksum_mismatch_is_caught(http: FileServer, tmp_path: Path) -> None:
    cache = ModelCache(tmp_path / "cache", max_bytes=10**8)
    url = http.put("/m/model.onnx", b"corrupted", **{"Content-MD5": content_md5(b"original!")})
    with pytest.raises(StorageIntegrityError, match=r"model.onnx: checksum mismatch") as info:
        cache.fetch(url)
    assert url in str(info.value)
    assert cache.entries() == []
    assert list((tmp_path / "cache" / ".tmp").iterdir()) == []
    # Without verification (stores whose checksums lie), the same download is accepted.
    unverified = ModelCache(tmp_path / "cache", max_bytes=10**8, verify=False)
    assert unverified.fetch(url).read_bytes() == b"corrupted"


def test_http_malicious_archive_is_refused(http: FileServer, tmp_path: Path) -> None:
    cache = ModelCache(tmp_path / "cache", max_bytes=10**8)
    url = http.put("/evil.tar.gz", tar_gz({"ok": b"x", "../../escaped": b"x"}))
    with pytest.raises(ArchiveError, match=r"unsafe archive member '\.\./\.\./escaped'"):
        cache.fetch(url)
    assert cache.entries() == []
    assert not (tmp_path / "escaped").exists()


def test_http_not_found_and_unreachable(http: FileServer, tmp_path: Path) -> None:
    cache = ModelCache(tmp_path / "cache", max_bytes=10**8)
    with pytest.raises(StorageNotFound, match=r"/missing.onnx: listing failed: not found"):
        cache.fetch(http.url + "/missing.onnx")
    port = free_port()
    with pytest.raises(
        StorageUnavailable, match=rf"http://127.0.0.1:{port}/m.onnx: listing failed"
    ):
        cache.fetch(f"http://127.0.0.1:{port}/m.onnx", StorageOptions(timeout=1, retries=1))


def test_http_credentials_in_url_stay_out_of_errors(http: FileServer, tmp_path: Path) -> None:
    cache = ModelCache(tmp_path / "cache", max_bytes=10**8)
    url = http.url.replace("http://", "http://alice:pa55-w0rd@") + "/missing.onnx?token=tok-12345"
    with pytest.raises(StorageNotFound) as info:
        cache.fetch(url)
    assert "pa55-w0rd" not in str(info.value) and "tok-12345" not in str(info.value)
    assert "/missing.onnx" in str(info.value)


def test_concurrent_threads_download_once(http: FileServer, tmp_path: Path) -> None:
    http.delay = 0.3
    url = http.put("/m/model.onnx", b"shared" * 1000)
    cache = ModelCache(tmp_path / "cache", max_bytes=10**8)
    results: list[Path] = []
    errors: list[BaseException] = []

    def fetch() -> None:
        try:
            results.append(cache.fetch(url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=fetch) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(set(results)) == 1 and results[0].read_bytes() == b"shared" * 1000
    assert http.gets("/m/model.onnx") == 1


FETCH = """
import sys
from pathlib import Path
from pier.storage import ModelCache
print(ModelCache(Path(sys.argv[1]), 10**8).fetch(sys.argv[2]))
"""


def test_concurrent_processes_download_once(http: FileServer, tmp_path: Path) -> None:
    http.delay = 0.5
    url = http.put("/m/model.tar.gz", tar_gz({"1/model.onnx": b"shared by processes"}))
    cache_dir = tmp_path / "cache"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", FETCH, str(cache_dir), url], stdout=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    outputs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0]
    assert len(set(outputs)) == 1
    assert (Path(outputs[0]) / "1" / "model.onnx").read_bytes() == b"shared by processes"
    assert http.gets("/m/model.tar.gz") == 1
    # The processes are gone: their holds do not pin the entry.
    assert [e.held for e in ModelCache(cache_dir, 10**8).entries()] == [False]


def test_lru_eviction_spares_entries_in_use(http: FileServer, tmp_path: Path) -> None:
    cache = ModelCache(tmp_path / "cache", max_bytes=2500)
    a, b, c, d = (http.put(f"/{n}.bin", n.encode() * 1000) for n in "abcd")

    with cache.using(a) as path_a:  # held: must survive whatever comes next
        assert path_a.read_bytes() == b"a" * 1000
    pa = cache.fetch(a)
    pb = cache.fetch(b)
    cache.release(pb)
    pc = cache.fetch(c)
    cache.release(pc)
    # a (held) + b + c = 3000 > 2500: b, the least recently used free entry, went.
    assert {e.path for e in cache.entries()} == {pa, pc}
    assert pa.read_bytes() == b"a" * 1000

    cache.release(pa)
    cache.fetch(c)  # c is now the most recently used
    cache.release(pc)
    pd = cache.fetch(d)
    assert {e.path for e in cache.entries()} == {pc, pd}  # a, free and oldest, went
    assert not pa.exists()


HOLD = """
import sys
from pathlib import Path
from pier.storage import ModelCache
print(ModelCache(Path(sys.argv[1]), 10**8).fetch(sys.argv[2]), flush=True)
sys.stdin.read()  # hold the entry until the test closes our stdin
"""


def test_entry_held_by_another_process_is_not_evicted(http: FileServer, tmp_path: Path) -> None:
    a, b, c = (http.put(f"/{n}.bin", n.encode() * 1000) for n in "abc")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(tmp_path / "cache"), a],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdin is not None
    held = Path(holder.stdout.readline().strip())
    cache = ModelCache(tmp_path / "cache", max_bytes=1500)
    try:
        for url in (b, c):
            cache.release(cache.fetch(url))
        # a is the least recently used, but another process holds it.
        assert held.read_bytes() == b"a" * 1000
        assert [e.held for e in cache.entries() if e.path == held] == [True]
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
        holder.stdout.close()
    # Its holder is gone (the kernel dropped its lock): a is evictable now.
    cache.release(cache.fetch(b))
    assert not held.exists()


def test_store_down_falls_back_to_the_cached_copy(tmp_path: Path) -> None:
    server = FileServer()
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    url = server.put("/m/model.onnx", b"cached weights")
    cache = ModelCache(tmp_path / "cache", max_bytes=10**8)
    first = cache.fetch(url)
    server.shutdown()
    server.server_close()
    thread.join()
    assert cache.fetch(url, StorageOptions(timeout=1, retries=1)) == first
    assert first.read_bytes() == b"cached weights"


def _eventually(read: object, timeout: float = 2.0) -> int:
    """The last value of ``read()`` once it stops changing (a server logs after answering)."""
    assert callable(read)
    deadline = time.monotonic() + timeout
    value = read()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        again = read()
        if again == value and value:
            return int(value)
        value = again
    return int(value)
