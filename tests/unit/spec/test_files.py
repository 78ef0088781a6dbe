"""Spec files: JSON or YAML by extension, syntax errors with their line, the file named in problems."""

from __future__ import annotations

import pytest

from pier.errors import SpecError
from pier.spec import load_spec_bytes

YAML_SPEC = b"""\
name: resnet
model: ./models/resnet
processor: onnx
replicas: 2
resources:
  cpu: 2
  memory: 4Gi
batching:
  max_batch_size: 16
"""

JSON_EAS = b"""{
  "name": "resnet",
  "model_path": "oss://bucket/resnet/",
  "processor": "onnx",
  "metadata": {"instance": 2, "cpu": 2, "memory": 4096, "rpc.keepalive": 5000}
}"""


def test_yaml_file() -> None:
    parsed = load_spec_bytes(YAML_SPEC, "svc.yaml")
    assert parsed.form == "pier"
    assert parsed.spec.resources.memory == 4096 and parsed.spec.batching is not None


def test_json_file_in_eas_form() -> None:
    parsed = load_spec_bytes(JSON_EAS, "service.json")
    assert parsed.form == "eas" and parsed.spec.replicas == 2
    assert parsed.warnings == ["metadata.rpc.keepalive: valid on EAS but not used by Pier; ignored"]


@pytest.mark.parametrize("filename", ["spec", "spec.txt", "SPEC.YML"])
def test_unknown_extension_tries_json_then_yaml(filename: str) -> None:
    assert load_spec_bytes(JSON_EAS, filename).form == "eas"
    assert load_spec_bytes(YAML_SPEC, filename).form == "pier"


def test_utf8_bom_is_accepted() -> None:
    assert load_spec_bytes(b"\xef\xbb\xbf" + JSON_EAS, "s.json").spec.name == "resnet"


def test_json_syntax_error_names_file_and_line() -> None:
    raw = b'{\n  "name": "a",\n  "model": "m"\n  "replicas": 2\n}'
    with pytest.raises(SpecError) as info:
        load_spec_bytes(raw, "bad.json")
    assert info.value.message.startswith("bad.json: line 4, column 3: invalid JSON: Expecting ','")
    assert info.value.problems[0][0] == "line 4, column 3"


def test_yaml_syntax_error_names_file_and_line() -> None:
    raw = b"name: a\nmodel: m\nresources:\n  cpu: 1\n memory: 2\n"
    with pytest.raises(SpecError) as info:
        load_spec_bytes(raw, "bad.yaml")
    assert info.value.message.startswith("bad.yaml: line 5, column ")
    assert "invalid YAML" in info.value.message


def test_json_with_yaml_extension_still_parses() -> None:
    assert load_spec_bytes(JSON_EAS, "svc.yaml").form == "eas"


def test_validation_problems_name_the_file() -> None:
    with pytest.raises(SpecError) as info:
        load_spec_bytes(b"name: a\nmodel: m\nreplicas: -1\n", "conf/svc.yml")
    assert info.value.message == "conf/svc.yml: 1 problem(s): replicas: must be >= 0"


def test_empty_file_and_not_utf8() -> None:
    with pytest.raises(
        SpecError, match=r"empty.yaml: 1 problem\(s\): \(top level\): expected a mapping"
    ):
        load_spec_bytes(b"", "empty.yaml")
    with pytest.raises(SpecError, match="not UTF-8"):
        load_spec_bytes(b"name: \xff\xfe", "x.yaml")
