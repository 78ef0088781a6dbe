"""Pier's own spec form: defaults, every field's validation message and path, many problems at once."""

from __future__ import annotations

from typing import Any

import pytest

from pier.errors import ConfigError, SpecError
from pier.spec import ServiceSpec, parse_spec


def base(**extra: Any) -> dict[str, Any]:
    return {"name": "resnet", "model": "s3://bucket/models/resnet", **extra}


def problems_of(data: Any) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    return info.value.problems


def test_minimal_spec_gets_defaults() -> None:
    parsed = parse_spec(base())
    assert parsed.form == "pier" and parsed.warnings == []
    spec = parsed.spec
    assert spec.replicas == 1 and spec.processor is None and spec.parameters == {}
    assert spec.resources.gpu == 0 and spec.resources.cpu is None and spec.resources.memory is None
    assert spec.batching is None and spec.version_policy is None and spec.env == {}


def test_full_spec() -> None:
    spec = parse_spec(
        base(
            processor="ONNX",
            parameters={"intra_op_threads": 2},
            replicas=3,
            resources={"cpu": 1.5, "memory": "2Gi", "gpu": 1},
            batching={"max_batch_size": 8, "max_delay_ms": 5, "preferred_batch_sizes": [4, 8]},
            env={"OMP_NUM_THREADS": "2", "_x": ""},
            version_policy={"latest": 2},
        )
    ).spec
    assert spec.processor == "onnx"
    assert spec.resources.memory == 2048 and spec.resources.cpu == 1.5
    assert spec.batching is not None and spec.batching.max_delay_ms == 5.0
    assert spec.batching.max_queue_size == 4096
    assert spec.version_policy is not None and spec.version_policy.latest == 2


def test_spec_is_frozen_and_round_trips() -> None:
    spec = parse_spec(base(resources={"memory": "1G"}, batching={})).spec
    with pytest.raises(ValueError, match="frozen"):
        spec.replicas = 2
    assert ServiceSpec.model_validate(spec.model_dump(mode="json")) == spec


@pytest.mark.parametrize(
    ("extra", "path", "fragment"),
    [
        ({"name": "Resnet"}, "name", "not a valid name"),
        ({"name": "9lives"}, "name", "not a valid name"),
        ({"name": "a" * 64}, "name", "at most 63"),
        ({"name": 5}, "name", "must be a string"),
        ({"model": ""}, "model", "must not be empty"),
        ({"model": "ftp://host/m"}, "model", "unsupported scheme 'ftp://'"),
        ({"processor": "caffe"}, "processor", "unknown processor 'caffe'"),
        ({"processor": "tensorflow"}, "processor", "cannot run 'tensorflow' models yet"),
        ({"processor": "triton"}, "processor", "cannot run 'triton' models yet"),
        ({"parameters": [1]}, "parameters", "must be a mapping"),
        ({"replicas": -1}, "replicas", "must be >= 0"),
        ({"replicas": 65}, "replicas", "must be <= 64"),
        ({"replicas": True}, "replicas", "must be an integer"),
        ({"replicas": "2"}, "replicas", "must be an integer"),
        ({"resources": {"cpu": 0}}, "resources.cpu", "must be > 0"),
        ({"resources": {"cpu": "lots"}}, "resources.cpu", "must be a number"),
        (
            {"resources": {"memory": "12 giga"}},
            "resources.memory",
            "cannot read '12 giga' as a size",
        ),
        ({"resources": {"memory": 0}}, "resources.memory", "must be > 0"),
        ({"resources": {"gpu": -1}}, "resources.gpu", "must be >= 0"),
        ({"resources": {"disk": 1}}, "resources.disk", "unknown field"),
        ({"batching": {"max_batch_size": 0}}, "batching.max_batch_size", "must be >= 1"),
        ({"batching": {"max_delay_ms": -1}}, "batching.max_delay_ms", "must be >= 0"),
        ({"batching": {"max_queue_size": 0}}, "batching.max_queue_size", "must be >= 1"),
        (
            {"batching": {"preferred_batch_sizes": ["a"]}},
            "batching.preferred_batch_sizes[0]",
            "integer",
        ),
        (
            {"batching": {"max_batch_size": 4, "preferred_batch_sizes": [8]}},
            "batching",
            "1..max_batch_size",
        ),
        ({"env": {"1X": "a"}}, "env.1X", "not a valid variable name"),
        ({"env": {"A-B": "a"}}, "env.A-B", "not a valid variable name"),
        ({"env": {"PIER_HOME": "a"}}, "env.PIER_HOME", "reserved"),
        ({"env": {"A": 1}}, "env.A", "must be a string"),
        ({"version_policy": {}}, "version_policy", "exactly one"),
        ({"version_policy": {"latest": 1, "all": True}}, "version_policy", "exactly one"),
        ({"version_policy": {"all": False}}, "version_policy", "can only be true"),
        ({"version_policy": {"specific": []}}, "version_policy", "positive version numbers"),
        ({"version_policy": {"latest": 0}}, "version_policy.latest", "must be >= 1"),
        ({"code": {"path": "./code"}}, "code", "only the python processor"),
        ({"processor": "python", "code": {}}, "code.path", "is required"),
        ({"replica": 2}, "replica", "unknown field"),
    ],
)
def test_each_field_reports_its_path(extra: dict[str, Any], path: str, fragment: str) -> None:
    problems = problems_of(base(**extra))
    assert len(problems) == 1, problems
    assert problems[0][0] == path
    assert fragment in problems[0][1]


def test_missing_required_fields() -> None:
    assert problems_of({}) == [("name", "is required"), ("model", "is required")]


def test_every_problem_is_reported_at_once() -> None:
    data = {
        "name": "Bad Name",
        "model": "ftp://x",
        "replicas": 100,
        "resources": {"memory": "12 giga", "cpu": -1},
        "env": {"PIER_X": "1"},
        "surprise": True,
    }
    with pytest.raises(SpecError) as info:
        parse_spec(data, where="svc.yaml")
    err = info.value
    assert [p for p, _ in err.problems] == [
        "name",
        "model",
        "replicas",
        "resources.cpu",
        "resources.memory",
        "env.PIER_X",
        "surprise",
    ]
    assert err.message.startswith("svc.yaml: 7 problem(s): name: ")
    assert "; resources.memory: cannot read '12 giga' as a size" in err.message
    assert isinstance(err, ConfigError) and err.code == "invalid_argument"


@pytest.mark.parametrize("data", [None, [], "name: x", 3])
def test_top_level_must_be_a_mapping(data: Any) -> None:
    problems = problems_of(data)
    assert problems[0][0] == "(top level)" and "expected a mapping" in problems[0][1]


@pytest.mark.parametrize(
    "model",
    [
        "/srv/models/m",
        "models/m",
        "m.onnx",
        "file:///srv/m",
        "s3://b/m",
        "gs://b/m",
        "oss://b/m",
        "hdfs://nn/m",
        "http://h/m.tar.gz",
        "HTTPS://h/m",
    ],
)
def test_model_locations_accepted(model: str) -> None:
    assert parse_spec(base(model=model)).spec.model == model


@pytest.mark.parametrize(
    "processor", ["onnx", "sklearn", "xgboost", "lightgbm", "pytorch", "python"]
)
def test_runnable_processors(processor: str) -> None:
    assert parse_spec(base(processor=processor)).spec.processor == processor


@pytest.mark.parametrize(
    "extra",
    [
        {},
        {"resources": {"memory": "1Gi", "cpu": 2}, "version_policy": {"latest": 2}, "batching": {}},
        {"processor": "python", "code": {"path": "oss://b/code"}},
    ],
)
def test_stored_dump_parses_back_to_the_same_spec(extra: dict[str, Any]) -> None:
    spec = parse_spec(base(**extra)).spec
    assert parse_spec(spec.model_dump(mode="json"), "stored spec").spec == spec
