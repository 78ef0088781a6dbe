"""A service with no ready replica gets a 503 that says why: from `pier up`'s routes to the reply."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from pier.cli.up import _GatewayRoutes
from pier.control.reconciler import Desired
from pier.gateway import Gateway, run_in_thread


@pytest.fixture
def gateway() -> Iterator[tuple[Gateway, str]]:
    gw = Gateway()
    handle = run_in_thread(gw, "127.0.0.1", 0)
    yield gw, f"http://127.0.0.1:{handle.port}"
    handle.stop()


@pytest.mark.parametrize(
    ("desired", "message"),
    [
        (Desired("iris", 2, 3, True), "service 'iris' is stopped (pier start iris)"),
        (
            Desired("iris", 2, 0, False),
            "service 'iris' is scaled to 0 replicas (pier scale iris N)",
        ),
        (
            Desired("iris", 2, 3, False),
            "service 'iris' has no ready replica (0 of 3 ready); "
            "its replicas may be starting or failing (pier describe iris)",
        ),
    ],
)
def test_the_503_says_stopped_scaled_to_0_or_starting(
    gateway: tuple[Gateway, str], desired: Desired, message: str
) -> None:
    gw, url = gateway
    _GatewayRoutes(gw).set_routes("iris", [], desired)
    for path in ("/v1/models/iris:predict", "/v2/models/iris/infer"):
        r = httpx.post(url + path, json={"instances": [1.0]})
        assert r.status_code == 503
        assert r.json() == {"error": message}


def test_a_started_service_loses_its_stopped_reason(gateway: tuple[Gateway, str]) -> None:
    gw, url = gateway
    routes = _GatewayRoutes(gw)
    routes.set_routes("iris", [], Desired("iris", 1, 2, True))
    routes.set_routes("iris", [], Desired("iris", 1, 2, False))
    r = httpx.post(f"{url}/v2/models/iris/infer", json={})
    assert "(0 of 2 ready)" in r.json()["error"]
