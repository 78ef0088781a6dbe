"""Metrics: per-request counts kept in plain Python reach prometheus_client when flushed."""

from __future__ import annotations

from bisect import bisect_left

from pier.observe import metrics as m
from pier.observe.metrics import LATENCY_BUCKETS, Metrics


def test_recorded_requests_reach_the_histograms_when_flushed() -> None:
    metrics = Metrics()
    bound = metrics.bind("mod", 3)
    edges = [*LATENCY_BUCKETS, 0.0, 7e-5, 0.00011, 0.3, 100.0]  # each bound, between, past
    for i, seconds in enumerate(edges):
        protocol = "v2" if i % 2 else "tfserving"
        bound.record_success(protocol, seconds, seconds / 2, 0.0, i % 40, 1 + i % 3, float(i))
    assert len(bound.pending) == len(edges)  # nothing bucketed yet
    metrics.flush()
    assert bound.pending == []

    def value(name: str, **labels: str) -> float:
        got = metrics.registry.get_sample_value(name, {"model": "mod", "version": "3", **labels})
        assert got is not None, (name, labels)
        return got

    bounds = [*LATENCY_BUCKETS, float("inf")]
    for family, values in (
        ("pier_request_duration_seconds", edges),
        ("pier_queue_duration_seconds", [s / 2 for s in edges]),
        ("pier_compute_duration_seconds", [0.0] * len(edges)),
    ):
        per_bucket = [0] * len(bounds)
        for v in values:
            per_bucket[bisect_left(bounds, v)] += 1  # what FastHistogram.observe does
        for i, le in enumerate(bounds):
            le_text = "+Inf" if le == float("inf") else str(le)
            assert value(f"{family}_bucket", le=le_text) == sum(per_bucket[: i + 1]), (family, le)
        assert abs(value(f"{family}_sum") - sum(values)) < 1e-9
        assert value(f"{family}_count") == len(values)
    assert value("pier_batch_size_sum") == sum(i % 40 for i in range(len(edges)))
    assert value("pier_batch_size_bucket", le="1.0") == sum(i % 40 <= 1 for i in range(len(edges)))
    assert value("pier_inference_requests_total", protocol="v2") == len(edges) // 2
    assert value("pier_inference_requests_total", protocol="tfserving") == (len(edges) + 1) // 2
    totals = bound.totals  # what the V2 statistics extension reads
    assert (totals.count, totals.rows) == (len(edges), sum(1 + i % 3 for i in range(len(edges))))
    assert abs(totals.total_s - sum(edges)) < 1e-9
    assert abs(totals.queue_s - sum(edges) / 2) < 1e-9
    assert (totals.compute_s, totals.last_stamp) == (0.0, float(len(edges) - 1))


def test_pending_requests_are_bucketed_before_the_list_grows_long() -> None:
    metrics = Metrics()
    bound = metrics.bind("mod", 1)
    for _ in range(m.PENDING_LIMIT):
        bound.record_success("v2", 0.001, 0.0, 0.0005, 1, 1, 0.0)
    assert bound.pending == []
    bound.flush()
    count = metrics.registry.get_sample_value(
        "pier_request_duration_seconds_count", {"model": "mod", "version": "1"}
    )
    assert count == m.PENDING_LIMIT


def test_http_responses_are_counted_per_protocol_and_status() -> None:
    metrics = Metrics()
    for status in (200, 200, 404):
        metrics.http_response("v2", status)
    metrics.flush()
    get = metrics.registry.get_sample_value
    assert get("pier_http_responses_total", {"protocol": "v2", "status": "200"}) == 2
    assert get("pier_http_responses_total", {"protocol": "v2", "status": "404"}) == 1
