"""Every number, count, length and depth a spec carries is bounded at validation, in both forms.

Found by fuzzing: values past these bounds used to pass validation (or raise OverflowError)
and then fail far away, in the store, the cgroup files or the replica.
"""

from __future__ import annotations

from typing import Any

import pytest

from pier.errors import SpecError
from pier.spec import load_spec_bytes, parse_spec


def base(**extra: Any) -> dict[str, Any]:
    return {"name": "m", "model": "/srv/m", **extra}


def problems_of(data: Any) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    return info.value.problems


def _nested(depth: int) -> dict[str, Any]:
    root: dict[str, Any] = {}
    node = root
    for _ in range(depth):
        node["x"] = {}
        node = node["x"]
    return root


@pytest.mark.parametrize(
    ("extra", "path", "fragment"),
    [
        ({"resources": {"memory": "9" * 400}}, "resources.memory", "at most 16Ti"),
        ({"resources": {"memory": "9" * 310 + "Gi"}}, "resources.memory", "at most 16Ti"),
        ({"resources": {"memory": 10**400}}, "resources.memory", "at most 16Ti"),
        ({"resources": {"memory": 1e308}}, "resources.memory", "at most 16Ti"),
        ({"resources": {"memory": "17Ti"}}, "resources.memory", "at most 16Ti"),
        ({"resources": {"cpu": 1e308}}, "resources.cpu", "must be <= 1024"),
        ({"resources": {"cpu": 1e-9}}, "resources.cpu", "at least 0.01"),
        ({"resources": {"gpu": 2**70}}, "resources.gpu", "must be <= 64"),
        ({"replicas": 2**64}, "replicas", "must be <= 64"),
        ({"batching": {"max_batch_size": 2**64}}, "batching.max_batch_size", "<= 65536"),
        ({"batching": {"max_delay_ms": 1e308}}, "batching.max_delay_ms", "<= 60000"),
        ({"batching": {"max_queue_size": 2**64}}, "batching.max_queue_size", "<= 1000000"),
        (
            {"batching": {"max_batch_size": 4, "preferred_batch_sizes": [1] * 65}},
            "batching.preferred_batch_sizes",
            "at most 64 items",
        ),
        ({"version_policy": {"latest": 2**64}}, "version_policy.latest", "<= 1000"),
        ({"version_policy": {"specific": [2**64]}}, "version_policy", "up to 2147483647"),
        ({"env": {f"V{i}": "" for i in range(257)}}, "env", "at most 256 items"),
        ({"env": {"V": "x" * 40_000}}, "env.V", "at most 32768 characters"),
        ({"env": {"V" * 300: ""}}, "env." + "V" * 300, "at most 256 characters"),
        ({"parameters": _nested(300)}, "parameters", "nested deeper than 32 levels"),
        ({"parameters": {"a": [1, 2**64]}}, "parameters", "64 bits (at a[1])"),
        ({"parameters": {"a": float("inf")}}, "parameters", "finite"),
        ({"parameters": {"a": list(range(10_001))}}, "parameters", "more than 10000 values"),
        ({"model": "/m" * 3000}, "model", "at most 4096 characters"),
        ({"model": "/srv/m\n"}, "model", "line breaks"),
    ],
)
def test_out_of_bounds_values_are_problems_with_paths(
    extra: dict[str, Any], path: str, fragment: str
) -> None:
    problems = problems_of(base(**extra))
    assert len(problems) == 1, problems
    assert problems[0][0] == path
    assert fragment in problems[0][1], problems


@pytest.mark.parametrize("name", ["a\n", "a\r\n", "\na", "a\x00"])
def test_a_name_with_a_line_break_is_refused(name: str) -> None:
    # `$` matches before a trailing newline: "a\n" used to pass and broke the cgroup path.
    (problem,) = problems_of(base(name=name))
    assert problem[0] == "name" and "not a valid name" in problem[1]
    assert "\n" not in problem[1]  # shown escaped, on one line


def test_the_same_bounds_hold_in_the_eas_form() -> None:
    problems = problems_of(
        {
            "name": "m",
            "model_path": "/srv/m",
            "processor_params": {"deep": _nested(40)},
            "metadata": {
                "instance": 2**70,
                "cpu": 1e308,
                "memory": "9" * 310 + "Gi",
                "gpu": 10**30,
                "rpc": {"batching": True, "max_batch_size": 2**64, "max_queue_size": 2**64},
            },
        }
    )
    paths = {p for p, _ in problems}
    assert paths == {
        "processor_params",
        "metadata.instance",
        "metadata.cpu",
        "metadata.memory",
        "metadata.gpu",
        "metadata.rpc.max_batch_size",
        "metadata.rpc.max_queue_size",
    }


def test_values_at_the_bounds_are_accepted() -> None:
    spec = parse_spec(
        base(
            replicas=64,
            resources={"cpu": 1024, "memory": "16Ti", "gpu": 64},
            batching={"max_batch_size": 65536, "max_delay_ms": 60000, "max_queue_size": 10**6},
            parameters={"deep": _nested(30), "big": 2**63 - 1},
            env={f"V{i}": "x" * 100 for i in range(256)},
        )
    ).spec
    assert spec.resources.memory == 16 * 1024 * 1024 and spec.resources.cpu == 1024


@pytest.mark.parametrize(
    ("data", "path", "message"),
    [
        (base(replcias=3), "replcias", "unknown field 'replcias'; did you mean 'replicas'?"),
        (
            base(resources={"memroy": "1Gi"}),
            "resources.memroy",
            "unknown field 'memroy'; did you mean 'memory'?",
        ),
        (
            base(batching={"max_batch": 4}),
            "batching.max_batch",
            "unknown field 'max_batch'; did you mean 'max_batch_size'?",
        ),
        (base(zzz=1), "zzz", "unknown field 'zzz'"),
        (
            {"name": "m", "model_pth": "/x", "model_path": "/x"},
            "model_pth",
            "unknown key (neither a Pier-mapped nor a known EAS key); did you mean 'model_path'?",
        ),
        (
            {"name": "m", "model_path": "/x", "metadata": {"instanse": 2}},
            "metadata.instanse",
            "unknown key (neither a Pier-mapped nor a known EAS key); did you mean 'instance'?",
        ),
        (
            {"name": "m", "model_path": "/x", "metadata": {"rpc": {"batchng": True}}},
            "metadata.rpc.batchng",
            "unknown key (neither a Pier-mapped nor a known EAS key); "
            "did you mean 'rpc.batching'?",
        ),
    ],
)
def test_unknown_fields_suggest_the_closest_one(data: Any, path: str, message: str) -> None:
    assert problems_of(data) == [(path, message)]


@pytest.mark.parametrize("filename", ["s.json", "s.yaml", "s.txt"])
def test_a_file_nested_past_the_recursion_limit_is_a_spec_error(filename: str) -> None:
    raw = b"[" * 100_000 + b"]" * 100_000
    with pytest.raises(SpecError) as info:
        load_spec_bytes(raw, filename)
    assert info.value.problems == [("(top level)", "nested too deeply to be a spec")]
