"""Which service a path names, why a route has no replica, and hop-by-hop header rewriting."""

from __future__ import annotations

import pytest

from pier.gateway.pool import strip_hop_by_hop
from pier.gateway.routes import ServiceRoute, service_of


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v1/models/iris", ("iris", "tfserving")),
        ("/v1/models/iris:predict", ("iris", "tfserving")),
        ("/v1/models/iris:classify", ("iris", "tfserving")),
        ("/v1/models/iris/metadata", ("iris", "tfserving")),
        ("/v1/models/iris/versions/3:regress", ("iris", "tfserving")),
        ("/v1/models/iris/labels/stable:predict", ("iris", "tfserving")),
        ("/v2/models/iris", ("iris", "v2")),
        ("/v2/models/iris/infer", ("iris", "v2")),
        ("/v2/models/iris/ready", ("iris", "v2")),
        ("/v2/models/iris/versions/2/infer", ("iris", "v2")),
        ("/v2/models/iris/config", ("iris", "v2")),
        ("/v2/models/iris/stats", ("iris", "v2")),
        ("/v2/models/my%2Dmodel/infer", ("my-model", "v2")),
    ],
)
def test_model_paths_name_their_service(path: str, expected: tuple[str, str]) -> None:
    assert service_of(path) == expected


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/metrics",
        "/v2",
        "/v2/health/ready",
        "/v2/models",
        "/v2/models/",
        "/v1/models/",
        "/v1/models/:predict",
        "/api/v1/services",
        "/v3/models/iris",
    ],
)
def test_other_paths_name_no_service(path: str) -> None:
    assert service_of(path) is None


def test_hop_by_hop_response_headers_are_dropped() -> None:
    head = (
        b"HTTP/1.1 200 OK\r\nDate: x\r\nConnection: close, X-Private\r\nKeep-Alive: timeout=5"
        b"\r\nX-Private: 1\r\nContent-Length: 2\r\nContent-Type: application/json"
    )
    assert strip_hop_by_hop(head) == (
        b"HTTP/1.1 200 OK\r\nDate: x\r\nContent-Length: 2\r\nContent-Type: application/json"
    )


@pytest.mark.parametrize(
    ("wanted", "stopped", "reason"),
    [
        (3, True, "service 'iris' is stopped (pier start iris)"),
        (0, True, "service 'iris' is stopped (pier start iris)"),
        (0, False, "service 'iris' is scaled to 0 replicas (pier scale iris N)"),
        (
            2,
            False,
            "service 'iris' has no ready replica (0 of 2 ready); "
            "its replicas may be starting or failing (pier describe iris)",
        ),
        (None, False, "service 'iris' has no ready replica"),
    ],
)
def test_a_route_without_replicas_says_why(wanted: int | None, stopped: bool, reason: str) -> None:
    route = ServiceRoute("iris")
    route.wanted, route.stopped = wanted, stopped
    assert route.no_replica_reason() == reason
