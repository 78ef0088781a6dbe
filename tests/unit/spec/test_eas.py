"""The PAI-EAS form: mapping onto ServiceSpec, EAS paths in problems, warnings for ignored keys."""

from __future__ import annotations

from typing import Any

import pytest

from pier.errors import SpecError
from pier.spec import parse_spec


def eas(**extra: Any) -> dict[str, Any]:
    return {"name": "mnist", "model_path": "oss://bucket/mnist/", "processor": "onnx", **extra}


def problems_of(data: Any) -> list[tuple[str, str]]:
    with pytest.raises(SpecError) as info:
        parse_spec(data)
    return info.value.problems


def test_eascmd_example_maps_onto_the_spec() -> None:
    parsed = parse_spec(
        {
            "name": "mnist",
            "model_path": "http://example.com/models/mnist.tar.gz",
            "processor": "xgboost",
            "processor_params": {"nthread": 2},
            "metadata": {"instance": 2, "cpu": 4, "gpu": 0, "memory": 10000},
        }
    )
    assert parsed.form == "eas" and parsed.warnings == []
    spec = parsed.spec
    assert spec.name == "mnist" and spec.model == "http://example.com/models/mnist.tar.gz"
    assert spec.processor == "xgboost" and spec.parameters == {"nthread": 2}
    assert spec.replicas == 2
    assert (spec.resources.cpu, spec.resources.gpu, spec.resources.memory) == (4.0, 0, 10000)
    assert spec.batching is None


@pytest.mark.parametrize(
    "metadata",
    [
        {
            "rpc.batching": True,
            "rpc.max_batch_size": 16,
            "rpc.max_batch_timeout": 50,
            "rpc.max_queue_size": 64,
        },
        {
            "rpc": {
                "batching": True,
                "max_batch_size": 16,
                "max_batch_timeout": 50,
                "max_queue_size": 64,
            }
        },
        {
            "rpc.batching": True,
            "rpc": {"max_batch_size": 16, "max_batch_timeout": 50},
            "rpc.max_queue_size": 64,
        },
    ],
    ids=["flat", "nested", "mixed"],
)
def test_batching_flat_or_nested(metadata: dict[str, Any]) -> None:
    batching = parse_spec(eas(metadata=metadata)).spec.batching
    assert batching is not None
    assert (batching.max_batch_size, batching.max_delay_ms, batching.max_queue_size) == (
        16,
        50.0,
        64,
    )


def test_same_key_flat_and_nested_is_a_problem() -> None:
    problems = problems_of(eas(metadata={"rpc.batching": True, "rpc": {"batching": True}}))
    assert problems == [("metadata.rpc.batching", "given twice (nested and flat)")]


def test_batch_settings_without_batching_warn() -> None:
    parsed = parse_spec(eas(metadata={"rpc": {"max_batch_size": 8}}))
    assert parsed.spec.batching is None
    assert parsed.warnings == [
        "metadata.rpc.max_batch_size: used only when metadata.rpc.batching is true; ignored"
    ]


def test_known_but_unmapped_keys_are_warnings() -> None:
    parsed = parse_spec(
        eas(
            token="abc",
            oss_endpoint="oss-cn-beijing.aliyuncs.com",
            model_config={"a": 1},
            metadata={
                "instance": 1,
                "resource": "eas-r-123",
                "rpc.keepalive": 5000,
                "rpc": {"worker_threads": 8},
                "rolling_strategy": {"max_surge": 1},
            },
        )
    )
    named = {w.split(":")[0] for w in parsed.warnings}
    assert named == {
        "token",
        "oss_endpoint",
        "model_config",
        "metadata.resource",
        "metadata.rpc.keepalive",
        "metadata.rpc.worker_threads",
        "metadata.rolling_strategy.max_surge",
    }


def test_unknown_keys_are_problems_with_their_path() -> None:
    problems = problems_of(eas(modle_path="x", metadata={"instances": 2, "rpc": {"batch": True}}))
    assert [p for p, _ in problems] == ["modle_path", "metadata.instances", "metadata.rpc.batch"]
    assert all("unknown key" in m for _, m in problems)


def test_validation_problems_use_eas_paths() -> None:
    problems = problems_of(
        eas(
            metadata={
                "instance": -1,
                "cpu": 0,
                "gpu": -2,
                "memory": "12 giga",
                "rpc": {"batching": True, "max_batch_size": 0, "max_batch_timeout": -5},
            },
            processor_params=[1],
        )
    )
    assert problems == [
        ("processor_params[0]", "list items must be mappings or 'key=value' strings"),
        ("metadata.instance", "must be >= 0"),
        ("metadata.cpu", "must be > 0"),
        ("metadata.memory", problems[3][1]),
        ("metadata.gpu", "must be >= 0"),
        ("metadata.rpc.max_batch_size", "must be >= 1"),
        ("metadata.rpc.max_batch_timeout", "must be >= 0"),
    ]
    assert problems[3][1].startswith("cannot read '12 giga' as a size")


def test_missing_model_path_and_bad_name() -> None:
    problems = problems_of({"name": "Mnist", "metadata": {"instance": 1}})
    assert [p for p, _ in problems] == ["name", "model_path"]
    assert problems[1][1] == "is required"


@pytest.mark.parametrize(
    ("processor", "runtime"),
    [
        ("onnx", "onnx"),
        ("xgboost", "xgboost"),
        ("pytorch_cpu_1.10", "pytorch"),
        ("pytorch_gpu_1.6", "pytorch"),
        ("lightgbm", "lightgbm"),
        ("sklearn_cpu", "sklearn"),
    ],
)
def test_builtin_processor_names(processor: str, runtime: str) -> None:
    assert parse_spec(eas(processor=processor)).spec.processor == runtime


@pytest.mark.parametrize(
    ("processor", "fragment"),
    [
        ("tensorflow_cpu_1.12", "cannot run 'tensorflow'"),
        ("pmml", "cannot run 'pmml'"),
        ("caffe_cpu", "unknown processor 'caffe'"),
        ("alink_pai_processor", "unknown processor"),
    ],
)
def test_processors_pier_cannot_run(processor: str, fragment: str) -> None:
    problems = problems_of(eas(processor=processor))
    assert problems[0][0] == "processor" and fragment in problems[0][1]


def test_custom_python_processor_keeps_its_code_location() -> None:
    data = {
        "name": "echo",
        "model_path": "oss://bucket/model/",
        "processor_type": "python",
        "processor_path": "oss://bucket/code.tar.gz",
        "processor_entry": "app.py",
        "metadata": {"instance": 1},
    }
    spec = parse_spec(data).spec
    assert spec.processor == "python"
    assert spec.code is not None and (spec.code.path, spec.code.entry) == (
        "oss://bucket/code.tar.gz",
        "app.py",
    )


def test_custom_processor_in_another_language_is_a_problem() -> None:
    problems = problems_of(
        {
            "name": "echo",
            "model_path": "x",
            "processor_type": "cpp",
            "processor_path": "y",
            "processor_entry": "libecho.so",
        }
    )
    assert problems == [
        ("processor_type", "Pier runs custom processors written in Python only, not 'cpp'")
    ]


def test_processor_and_processor_type_together() -> None:
    problems = problems_of(eas(processor_type="python"))
    assert problems[0][0] == "processor_type" and "not both" in problems[0][1]


def test_processor_params_list_merges() -> None:
    spec = parse_spec(eas(processor_params=[{"a": 1}, "b = two"])).spec
    assert spec.parameters == {"a": 1, "b": "two"}


def test_name_from_metadata() -> None:
    spec = parse_spec({"model_path": "oss://b/m", "metadata": {"name": "demo", "instance": 1}}).spec
    assert spec.name == "demo"
    problems = problems_of(eas(metadata={"name": "other"}))
    assert problems == [("metadata.name", "'other' differs from name 'mnist'")]


def test_form_detection() -> None:
    assert parse_spec({"name": "a", "model": "m"}).form == "pier"
    assert parse_spec({"name": "a", "model_path": "m"}).form == "eas"
    assert parse_spec({"name": "a", "processor_params": {}, "model_path": "m"}).form == "eas"
    # With "model", EAS keys are just unknown fields of the Pier form.
    problems = problems_of({"name": "a", "model": "m", "metadata": {}})
    assert problems == [("metadata", "unknown field 'metadata'")]


def test_metadata_must_be_a_mapping() -> None:
    assert problems_of(eas(metadata=[1])) == [("metadata", "must be a mapping")]
    assert problems_of(eas(metadata={"rpc": 1})) == [("metadata.rpc", "must be a mapping")]
