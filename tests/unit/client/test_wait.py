"""``PierClient.wait`` against a real management API: it stops as soon as waiting is futile."""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from pier.client import PierClient, ServiceFailed, WaitTimeout
from pier.control.api import create_api
from pier.control.records import ReplicaRecord, ReplicaState
from pier.control.store import Store
from tests.replicas import observe

TOKEN = "wait-token"
LOAD_ERROR = "model failed to load: /m/1/model.onnx: INVALID_PROTOBUF"


class Hooks:
    def wake(self) -> None:
        pass

    async def logs(
        self, service: str, replica: str | None, tail: int, follow: bool
    ) -> AsyncIterator[str]:
        yield "nothing"


class ThreadServer:
    """The API served by uvicorn on a free 127.0.0.1 port, in a background thread."""

    def __init__(self, app: Any) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="wait-api", daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive(), "no server"
            time.sleep(0.01)
        return f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(f"sqlite:///{tmp_path / 'pier.db'}")
    s.create_service("iris", {"name": "iris", "model": "/m"}, 2)
    yield s
    s.close()


@pytest.fixture
def client(store: Store) -> Iterator[PierClient]:
    app = create_api(store, Hooks(), TOKEN, gateway_url="http://gw")
    with ThreadServer(app) as url, PierClient(url, TOKEN) as c:
        yield c


def put(store: Store, id: str, state: ReplicaState, revision: int = 1, **extra: Any) -> None:
    observe(store, ReplicaRecord(id=id, service="iris", revision=revision, state=state, **extra))


def failing(store: Store, id: str, revision: int = 1, *, permanent: bool = True) -> None:
    put(
        store,
        id,
        ReplicaState.BACKOFF,
        revision,
        restarts=2,
        reason=LOAD_ERROR,
        extra={"permanent": permanent},
    )


def test_a_revision_whose_replicas_all_fail_for_good_ends_the_wait(
    client: PierClient, store: Store
) -> None:
    failing(store, "iris-1-aaaaa")
    failing(store, "iris-1-bbbbb")
    started = time.monotonic()
    with pytest.raises(ServiceFailed) as info:
        client.wait("iris", timeout=60, interval=0.05)
    assert time.monotonic() - started < 5
    message = info.value.message
    assert message.startswith("service 'iris' revision 1 cannot start: replica iris-1-aaaaa")
    assert LOAD_ERROR in message and message.count(LOAD_ERROR) == 1  # said once
    assert "pier update iris" in message and "keeps serving" not in message
    assert isinstance(info.value, WaitTimeout)  # callers catching WaitTimeout still do


def test_a_failed_update_says_the_old_revision_keeps_serving(
    client: PierClient, store: Store
) -> None:
    store.update_service("iris", {"name": "iris", "model": "/other"})
    put(store, "iris-1-aaaaa", ReplicaState.READY)
    put(store, "iris-1-bbbbb", ReplicaState.READY)
    failing(store, "iris-2-ccccc", 2)
    failing(store, "iris-2-ddddd", 2)
    with pytest.raises(ServiceFailed) as info:
        client.wait("iris", timeout=60, interval=0.05)
    message = info.value.message
    assert message.startswith("service 'iris' revision 2 cannot start: replica iris-2-ccccc")
    assert "revision 1 keeps serving" in message


@pytest.mark.parametrize(
    "second",
    [
        {"state": ReplicaState.STARTING},  # one is still starting: it may yet serve
        {"state": ReplicaState.BACKOFF, "reason": "killed by SIGKILL"},  # not (yet) permanent
    ],
)
def test_waiting_goes_on_while_a_replica_may_still_start(
    client: PierClient, store: Store, second: dict[str, Any]
) -> None:
    failing(store, "iris-1-aaaaa")
    put(store, "iris-1-bbbbb", **second)
    with pytest.raises(WaitTimeout) as info:
        client.wait("iris", timeout=0.5, interval=0.05)
    assert not isinstance(info.value, ServiceFailed)
    assert "not ready after 0.5s" in info.value.message


def test_wait_returns_when_ready(client: PierClient, store: Store) -> None:
    put(store, "iris-1-aaaaa", ReplicaState.READY)
    put(store, "iris-1-bbbbb", ReplicaState.READY)
    assert client.wait("iris", timeout=5, interval=0.05)["status"] == "running"
