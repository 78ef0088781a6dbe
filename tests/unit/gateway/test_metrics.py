"""The gateway's metric families: one registry per gateway, children bound once."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from pier.observe.gateway_metrics import GatewayMetrics


def test_bound_children_count_by_code_class_and_render() -> None:
    metrics = GatewayMetrics(CollectorRegistry())
    bound = metrics.bind("iris", 2)
    assert metrics.bind("iris", 2) is bound
    bound.observe(200, 0.002)
    bound.observe(204, 0.001)
    bound.observe(503, 0.5)
    inflight = 4
    metrics.track_in_flight("iris", lambda: float(inflight))
    text = metrics.render()[0].decode()
    assert 'pier_gateway_requests_total{code="2xx",revision="2",service="iris"} 2.0' in text
    assert 'pier_gateway_requests_total{code="5xx",revision="2",service="iris"} 1.0' in text
    assert 'pier_gateway_request_duration_seconds_count{revision="2",service="iris"} 3.0' in text
    assert 'pier_gateway_in_flight_requests{service="iris"} 4.0' in text
    metrics.forget_service("iris")
    assert "pier_gateway_in_flight_requests{" not in metrics.render()[0].decode()


def test_two_gateways_keep_separate_registries() -> None:
    a, b = GatewayMetrics(CollectorRegistry()), GatewayMetrics(CollectorRegistry())
    a.bind("x", 1).observe(200, 0.1)
    assert b'service="x"' not in b.render()[0]
