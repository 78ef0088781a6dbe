"""The statistics extension: Triton's per-version counts and times, from the version's stats."""

from __future__ import annotations

from typing import Any

from pier.serving.served import ServedVersion


def _duration(count: int, ns: int) -> dict[str, int]:
    return {"count": count, "ns": ns}


def statistics(servable: list[ServedVersion]) -> dict[str, Any]:
    stats = []
    for s in servable:
        st = s.stats
        stats.append(
            {
                "name": s.name,
                "version": s.version_str,
                "last_inference": st.last_inference_ms,
                "inference_count": st.inference_count,
                "execution_count": s.runner.executions,
                "inference_stats": {
                    "success": _duration(st.success, st.success_ns),
                    "fail": _duration(st.failure, st.failure_ns),
                    "queue": _duration(st.success, st.queue_ns),
                    "compute_input": _duration(st.success, 0),
                    "compute_infer": _duration(st.success, st.compute_ns),
                    "compute_output": _duration(st.success, 0),
                    "cache_hit": _duration(0, 0),
                    "cache_miss": _duration(0, 0),
                },
                "batch_stats": [],
                "memory_usage": [],
                "response_stats": {},
            }
        )
    return {"model_stats": stats}
