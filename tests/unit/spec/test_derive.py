"""What is derived from a spec: absolute paths, the replica's model config, digest and JSON Schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import pytest

from pier.serving.modelconfig import parse_config
from pier.spec import parse_spec, resolve_local_paths, spec_digest, spec_schema, to_model_config


def spec_of(**fields: Any) -> Any:
    return parse_spec({"name": "m", "model": "models/m", **fields}).spec


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("models/m", "/srv/specs/models/m"),
        ("./m.onnx", "/srv/specs/m.onnx"),
        ("../shared/m", "/srv/shared/m"),
        ("/abs/m", "/abs/m"),
        ("s3://bucket/m", "s3://bucket/m"),
        ("file:///abs/m", "file:///abs/m"),
        ("oss://b/m", "oss://b/m"),
    ],
)
def test_resolve_local_paths(model: str, expected: str) -> None:
    resolved = resolve_local_paths(spec_of(model=model), Path("/srv/specs"))
    assert resolved.model == expected


def test_resolve_local_paths_covers_python_code() -> None:
    spec = spec_of(processor="python", code={"path": "code", "entry": "app.py"})
    resolved = resolve_local_paths(spec, Path("/srv/specs"))
    assert resolved.code is not None
    assert (resolved.code.path, resolved.code.entry) == ("/srv/specs/code", "app.py")
    assert spec.code is not None and spec.code.path == "code"  # the input is left alone


def test_relative_base_dir_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_local_paths(spec_of(), Path("specs")).model == str(
        tmp_path / "specs" / "models" / "m"
    )


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"processor": "onnx", "parameters": {"intra_op_threads": 2}},
        {"processor": "sklearn", "batching": {}},
        {
            "processor": "xgboost",
            "batching": {
                "max_batch_size": 8,
                "max_delay_ms": 1.5,
                "preferred_batch_sizes": [4, 8],
                "max_queue_size": 100,
            },
            "version_policy": {"specific": [1, 3]},
        },
        {"version_policy": {"all": True}},
        {"version_policy": {"latest": 2}},
    ],
)
def test_model_config_is_accepted_by_the_server(fields: dict[str, Any]) -> None:
    spec = spec_of(**fields)
    config = parse_config(to_model_config(spec), "test")
    assert config.runtime == spec.processor
    assert config.parameters == spec.parameters
    if spec.batching is None:
        assert config.dynamic_batching is None
    else:
        assert config.dynamic_batching is not None
        assert config.dynamic_batching.max_batch_size == spec.batching.max_batch_size
        assert config.dynamic_batching.max_queue_delay_ms == spec.batching.max_delay_ms
        assert config.dynamic_batching.preferred_batch_sizes == spec.batching.preferred_batch_sizes
        assert config.dynamic_batching.max_queue_size == spec.batching.max_queue_size
    if spec.version_policy is not None:
        vp = spec.version_policy
        assert (config.version_policy.latest, config.version_policy.specific) == (
            vp.latest,
            vp.specific,
        )
        assert config.version_policy.all == bool(vp.all)


def test_model_config_shape() -> None:
    assert to_model_config(spec_of()) == {"parameters": {}}
    config = to_model_config(spec_of(processor="onnx", batching={}, version_policy={"latest": 1}))
    assert config == {
        "runtime": "onnx",
        "parameters": {},
        "dynamic_batching": {
            "max_batch_size": 32,
            "max_queue_delay_ms": 2.0,
            "preferred_batch_sizes": [],
            "max_queue_size": 4096,
        },
        "version_policy": {"latest": 1},
    }


def test_digest_tells_changes_apart() -> None:
    a = spec_of(env={"A": "1", "B": "2"}, resources={"memory": "1Gi"})
    same = spec_of(resources={"memory": 1024}, env={"B": "2", "A": "1"})
    assert spec_digest(a) == spec_digest(same)
    assert len(spec_digest(a)) == 64
    assert spec_digest(a) != spec_digest(
        spec_of(env={"A": "1", "B": "2"}, resources={"memory": "1Gi"}, replicas=2)
    )
    # The same service written in the EAS form is the same spec.
    eas = parse_spec({"name": "m", "model_path": "models/m", "metadata": {"instance": 1}}).spec
    assert spec_digest(eas) == spec_digest(spec_of())


def test_schema_is_valid_and_accepts_a_spec() -> None:
    schema = spec_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "Pier service spec"
    assert "EAS" in schema["description"]
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    sample = {
        "name": "resnet",
        "model": "s3://bucket/resnet",
        "processor": "onnx",
        "parameters": {"intra_op_threads": 2},
        "replicas": 2,
        "resources": {"cpu": 1.5, "memory": "2Gi", "gpu": 0},
        "batching": {"max_batch_size": 8, "max_delay_ms": 2},
        "env": {"OMP_NUM_THREADS": "2"},
        "version_policy": {"latest": 1},
    }
    validator.validate(sample)
    parse_spec(sample)  # and the parser agrees
    errors = list(validator.iter_errors({"name": "a", "model": "m", "replicas": 100, "extra": 1}))
    assert len(errors) == 2


def test_every_field_has_a_description() -> None:
    schema = spec_schema()
    models = [schema, *schema["$defs"].values()]
    for model in models:
        for name, prop in model["properties"].items():
            assert prop.get("description"), name


def test_python_code_location_reaches_the_runtime_parameters() -> None:
    spec = spec_of(
        processor="python", code={"path": "/srv/code", "entry": "serve.py"}, parameters={"k": 1}
    )
    assert to_model_config(spec)["parameters"] == {
        "k": 1,
        "code_path": "/srv/code",
        "entry": "serve.py",
    }
    assert spec.parameters == {"k": 1}  # the spec itself is untouched
