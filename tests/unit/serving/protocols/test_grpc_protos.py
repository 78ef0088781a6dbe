"""gRPC protocol definitions: field numbers, method paths, and wire compatibility with clients.

Stubs that other projects generate (tritonclient's, or TF Serving's compiled from their
own layout) register the same protobuf names as Pier's modules, and one Python process
cannot hold both; those checks run the other side in a subprocess and compare JSON or bytes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from google.protobuf.descriptor import Descriptor, FieldDescriptor

from pier.serving.protocols.grpc import generate
from pier.serving.protocols.grpc.protos.inference import grpc_service_pb2 as oip
from pier.serving.protocols.grpc.protos.inference import model_config_pb2 as mc
from pier.serving.protocols.grpc.protos.tensorflow.core.example import feature_pb2
from pier.serving.protocols.grpc.protos.tensorflow.core.framework import tensor_pb2, types_pb2
from pier.serving.protocols.grpc.protos.tensorflow.core.protobuf import error_codes_pb2
from pier.serving.protocols.grpc.protos.tensorflow_serving.apis import (
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_pb2,
    predict_pb2,
)

F = FieldDescriptor


def fields(desc: Descriptor) -> dict[str, tuple[int, int]]:
    return {f.name: (f.number, f.type) for f in desc.fields}


def run_python(code: str, *args: str, path: Path | None = None) -> str:
    prefix = f"import sys; sys.path.insert(0, {str(path)!r})\n" if path else ""
    out = subprocess.run(
        [sys.executable, "-c", prefix + textwrap.dedent(code), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return out.stdout


# --- field numbers ----------------------------------------------------------------------


def test_infer_request_fields() -> None:
    assert fields(oip.ModelInferRequest.DESCRIPTOR) == {
        "model_name": (1, F.TYPE_STRING),
        "model_version": (2, F.TYPE_STRING),
        "id": (3, F.TYPE_STRING),
        "parameters": (4, F.TYPE_MESSAGE),
        "inputs": (5, F.TYPE_MESSAGE),
        "outputs": (6, F.TYPE_MESSAGE),
        "raw_input_contents": (7, F.TYPE_BYTES),
    }
    tensor = oip.ModelInferRequest.InferInputTensor.DESCRIPTOR
    assert {k: n for k, (n, _) in fields(tensor).items()} == {
        "name": 1,
        "datatype": 2,
        "shape": 3,
        "parameters": 4,
        "contents": 5,
    }
    assert fields(oip.ModelInferRequest.InferRequestedOutputTensor.DESCRIPTOR) == {
        "name": (1, F.TYPE_STRING),
        "parameters": (2, F.TYPE_MESSAGE),
    }


def test_infer_response_fields() -> None:
    assert {k: n for k, (n, _) in fields(oip.ModelInferResponse.DESCRIPTOR).items()} == {
        "model_name": 1,
        "model_version": 2,
        "id": 3,
        "parameters": 4,
        "outputs": 5,
        "raw_output_contents": 6,
    }
    assert set(fields(oip.ModelMetadataResponse.DESCRIPTOR)) == {
        "name",
        "versions",
        "platform",
        "inputs",
        "outputs",  # Triton's: no field 6
    }
    stream = oip.ModelStreamInferResponse.DESCRIPTOR
    assert fields(stream) == {
        "error_message": (1, F.TYPE_STRING),
        "infer_response": (2, F.TYPE_MESSAGE),
    }


def test_tensor_contents_fields() -> None:
    assert fields(oip.InferTensorContents.DESCRIPTOR) == {
        "bool_contents": (1, F.TYPE_BOOL),
        "int_contents": (2, F.TYPE_INT32),
        "int64_contents": (3, F.TYPE_INT64),
        "uint_contents": (4, F.TYPE_UINT32),
        "uint64_contents": (5, F.TYPE_UINT64),
        "fp32_contents": (6, F.TYPE_FLOAT),
        "fp64_contents": (7, F.TYPE_DOUBLE),
        "bytes_contents": (8, F.TYPE_BYTES),
    }
    assert all(f.is_repeated for f in oip.InferTensorContents.DESCRIPTOR.fields)


def test_infer_parameter_is_a_oneof() -> None:
    desc = oip.InferParameter.DESCRIPTOR
    assert fields(desc) == {
        "bool_param": (1, F.TYPE_BOOL),
        "int64_param": (2, F.TYPE_INT64),
        "string_param": (3, F.TYPE_STRING),
        "double_param": (4, F.TYPE_DOUBLE),
        "uint64_param": (5, F.TYPE_UINT64),
    }
    (oneof,) = desc.oneofs
    assert oneof.name == "parameter_choice" and len(oneof.fields) == 5
    repo = oip.ModelRepositoryParameter.DESCRIPTOR
    assert {k: n for k, (n, _) in fields(repo).items()} == {
        "bool_param": 1,
        "int64_param": 2,
        "string_param": 3,
        "bytes_param": 4,
    }


def test_statistics_and_repository_fields() -> None:
    stats = {k: n for k, (n, _) in fields(oip.ModelStatistics.DESCRIPTOR).items()}
    assert stats == {
        "name": 1,
        "version": 2,
        "last_inference": 3,
        "inference_count": 4,
        "execution_count": 5,
        "inference_stats": 6,
        "batch_stats": 7,
        "memory_usage": 8,
        "response_stats": 9,
    }
    infer = [f.name for f in sorted(oip.InferStatistics.DESCRIPTOR.fields, key=lambda f: f.number)]
    assert infer == [
        "success",
        "fail",
        "queue",
        "compute_input",
        "compute_infer",
        "compute_output",
        "cache_hit",
        "cache_miss",
    ]
    index = oip.RepositoryIndexResponse.ModelIndex.DESCRIPTOR
    assert {k: n for k, (n, _) in fields(index).items()} == {
        "name": 1,
        "version": 2,
        "state": 3,
        "reason": 4,
    }
    load = oip.RepositoryModelLoadRequest.DESCRIPTOR
    assert {k: n for k, (n, _) in fields(load).items()} == {
        "repository_name": 1,
        "model_name": 2,
        "parameters": 3,
    }


def test_model_config_fields() -> None:
    numbers = {k: n for k, (n, _) in fields(mc.ModelConfig.DESCRIPTOR).items()}
    assert numbers == {
        "name": 1,
        "platform": 2,
        "version_policy": 3,
        "max_batch_size": 4,
        "input": 5,
        "output": 6,
        "instance_group": 7,
        "default_model_filename": 8,
        "cc_model_filenames": 9,
        "metric_tags": 10,
        "dynamic_batching": 11,
        "parameters": 14,
        "backend": 17,
        "model_transaction_policy": 19,
        "response_cache": 24,
        "runtime": 25,
    }
    assert mc.DataType.Value("TYPE_STRING") == 13 and mc.DataType.Value("TYPE_BF16") == 14
    assert mc.ModelInstanceGroup.Kind.Value("KIND_CPU") == 2


def test_tensor_proto_fields() -> None:
    numbers = {k: n for k, (n, _) in fields(tensor_pb2.TensorProto.DESCRIPTOR).items()}
    assert numbers == {
        "dtype": 1,
        "tensor_shape": 2,
        "version_number": 3,
        "tensor_content": 4,
        "float_val": 5,
        "double_val": 6,
        "int_val": 7,
        "string_val": 8,
        "scomplex_val": 9,
        "int64_val": 10,
        "bool_val": 11,
        "dcomplex_val": 12,
        "half_val": 13,
        "resource_handle_val": 14,
        "variant_val": 15,
        "uint32_val": 16,
        "uint64_val": 17,
        "float8_val": 18,
    }
    by_name = tensor_pb2.TensorProto.DESCRIPTOR.fields_by_name
    assert by_name["resource_handle_val"].message_type.full_name == "tensorflow.ResourceHandleProto"
    assert by_name["variant_val"].message_type.full_name == "tensorflow.VariantTensorDataProto"
    assert types_pb2.DT_HALF == 19 and types_pb2.DT_UINT64 == 23 and types_pb2.DT_FLOAT_REF == 101


def test_tf_serving_fields() -> None:
    spec = model_pb2.ModelSpec.DESCRIPTOR
    assert {k: n for k, (n, _) in fields(spec).items()} == {
        "name": 1,
        "version": 2,
        "signature_name": 3,
        "version_label": 4,
    }
    assert spec.fields_by_name["version"].message_type.full_name == "google.protobuf.Int64Value"
    assert [f.name for f in spec.oneofs_by_name["version_choice"].fields] == [
        "version",
        "version_label",
    ]
    predict = {k: n for k, (n, _) in fields(predict_pb2.PredictRequest.DESCRIPTOR).items()}
    assert predict == {"model_spec": 1, "inputs": 2, "output_filter": 3}
    status = get_model_status_pb2.ModelVersionStatus
    assert {v.name: v.number for v in status.State.DESCRIPTOR.values} == {
        "UNKNOWN": 0,
        "START": 10,
        "LOADING": 20,
        "AVAILABLE": 30,
        "UNLOADING": 40,
        "END": 50,
    }
    assert [v.number for v in error_codes_pb2.Code.DESCRIPTOR.values] == list(range(17))
    feature = {k: n for k, (n, _) in fields(feature_pb2.Feature.DESCRIPTOR).items()}
    assert feature == {"bytes_list": 1, "float_list": 2, "int64_list": 3}
    assert feature_pb2.FloatList.DESCRIPTOR.fields_by_name["value"].is_packed
    metadata = get_model_metadata_pb2.GetModelMetadataResponse.DESCRIPTOR
    assert (
        metadata.fields_by_name["metadata"]
        .message_type.fields_by_name["value"]
        .message_type.full_name
        == "google.protobuf.Any"
    )


# --- services ---------------------------------------------------------------------------


class RecordingChannel:
    """Stands in for a grpc channel: records the method paths a stub asks for."""

    def __init__(self) -> None:
        self.paths: dict[str, str] = {}

    def __getattr__(self, kind: str) -> Any:
        def method(path: str, *args: Any, **kwargs: Any) -> None:
            self.paths[path] = kind

        return method


def test_method_paths() -> None:
    from pier.serving.protocols.grpc.protos.inference import grpc_service_pb2_grpc
    from pier.serving.protocols.grpc.protos.tensorflow_serving.apis import (
        model_service_pb2_grpc,
        prediction_service_pb2_grpc,
    )

    channel = RecordingChannel()
    grpc_service_pb2_grpc.GRPCInferenceServiceStub(channel)
    prediction_service_pb2_grpc.PredictionServiceStub(channel)
    model_service_pb2_grpc.ModelServiceStub(channel)
    oip_paths = {
        f"/inference.GRPCInferenceService/{m}": "unary_unary"
        for m in (
            "ServerLive",
            "ServerReady",
            "ModelReady",
            "ServerMetadata",
            "ModelMetadata",
            "ModelInfer",
            "ModelConfig",
            "ModelStatistics",
            "RepositoryIndex",
            "RepositoryModelLoad",
            "RepositoryModelUnload",
        )
    }
    assert channel.paths == {
        **oip_paths,
        "/inference.GRPCInferenceService/ModelStreamInfer": "stream_stream",
        "/tensorflow.serving.PredictionService/Classify": "unary_unary",
        "/tensorflow.serving.PredictionService/Regress": "unary_unary",
        "/tensorflow.serving.PredictionService/Predict": "unary_unary",
        "/tensorflow.serving.PredictionService/GetModelMetadata": "unary_unary",
        "/tensorflow.serving.ModelService/GetModelStatus": "unary_unary",
    }
    service = oip.DESCRIPTOR.services_by_name["GRPCInferenceService"]
    infer = service.methods_by_name["ModelInfer"]
    assert infer.full_name == "inference.GRPCInferenceService.ModelInfer"
    assert infer.input_type is oip.ModelInferRequest.DESCRIPTOR
    stream = service.methods_by_name["ModelStreamInfer"]
    assert stream.output_type is oip.ModelStreamInferResponse.DESCRIPTOR


# --- against other projects' definitions -----------------------------------------------

DUMP = """
import json, sys, importlib
out = {}
def walk(m):
    out[m.full_name] = {
        f.name: [f.number, f.type, f.is_repeated,
                 (f.message_type or f.enum_type).full_name if (f.message_type or f.enum_type) else None,
                 f.containing_oneof.name if f.containing_oneof else None]
        for f in m.fields
    }
    for e in m.enum_types:
        out[e.full_name] = {v.name: v.number for v in e.values}
    for n in m.nested_types:
        walk(n)
for name in sys.argv[1:]:
    d = importlib.import_module(name).DESCRIPTOR
    for m in d.message_types_by_name.values():
        walk(m)
    for e in d.enum_types_by_name.values():
        out[e.full_name] = {v.name: v.number for v in e.values}
    for s in d.services_by_name.values():
        out[s.full_name] = {
            m.name: [m.input_type.full_name, m.output_type.full_name,
                     m.client_streaming, m.server_streaming]
            for m in s.methods
        }
print(json.dumps(out))
"""


def test_inference_protos_match_tritonclient() -> None:
    """Every message, enum and rpc that Pier declares is field-for-field Triton's."""
    theirs = json.loads(
        run_python(DUMP, "tritonclient.grpc.service_pb2", "tritonclient.grpc.model_config_pb2")
    )
    prefix = "pier.serving.protocols.grpc.protos.inference."
    ours = json.loads(run_python(DUMP, prefix + "grpc_service_pb2", prefix + "model_config_pb2"))
    assert len(ours) > 60
    for name, members in ours.items():
        assert name in theirs, name
        for member, spec in members.items():
            assert theirs[name].get(member) == spec, f"{name}.{member}"


@pytest.fixture(scope="module")
def upstream_stubs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Client stubs compiled from the protos in TF Serving's and Triton's own layout."""
    src = tmp_path_factory.mktemp("upstream-protos")
    out = tmp_path_factory.mktemp("upstream-stubs")
    generate.write_upstream_layout(src)
    files = sorted(str(p.relative_to(src)) for p in src.rglob("*.proto"))
    assert "tensorflow_serving/apis/predict.proto" in files
    assert not any("pier/" in p.read_text() for p in src.rglob("*.proto"))
    cmd = [
        sys.executable,
        "-m",
        "grpc_tools.protoc",
        f"-I{src}",
        f"-I{generate.well_known_include()}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        *files,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return out


def sample_predict_request() -> predict_pb2.PredictRequest:
    req = predict_pb2.PredictRequest(output_filter=["y"])
    req.model_spec.name = "half_plus_two"
    req.model_spec.version.value = 3
    req.model_spec.signature_name = "serving_default"
    x = req.inputs["x"]
    x.dtype = types_pb2.DT_FLOAT
    x.tensor_shape.dim.add(size=3)
    x.float_val.extend([1.0, 2.0, 5.0])
    s = req.inputs["s"]
    s.dtype = types_pb2.DT_STRING
    s.tensor_shape.dim.add(size=1)
    s.string_val.append(b"\xffbytes")
    return req


CLIENT = """
import sys
from tensorflow_serving.apis import predict_pb2, prediction_service_pb2_grpc
from tensorflow.core.framework import types_pb2
import tensorflow_serving, tensorflow
assert not tensorflow_serving.__name__.startswith("pier")
req = predict_pb2.PredictRequest(output_filter=["y"])
req.model_spec.name = "half_plus_two"
req.model_spec.version.value = 3
req.model_spec.signature_name = "serving_default"
x = req.inputs["x"]
x.dtype = types_pb2.DT_FLOAT
x.tensor_shape.dim.add(size=3)
x.float_val.extend([1.0, 2.0, 5.0])
s = req.inputs["s"]
s.dtype = types_pb2.DT_STRING
s.tensor_shape.dim.add(size=1)
s.string_val.append(b"\\xffbytes")
# Parse what Pier wrote and write it again: the bytes must survive.
echoed = predict_pb2.PredictResponse.FromString(bytes.fromhex(sys.argv[1]))
print(req.SerializeToString(deterministic=True).hex())
print(echoed.SerializeToString(deterministic=True).hex())
print(req.DESCRIPTOR.full_name, prediction_service_pb2_grpc.PredictionServiceStub.__name__)
"""


def test_upstream_stubs_speak_the_same_bytes(upstream_stubs: Path) -> None:
    response = predict_pb2.PredictResponse()
    response.model_spec.name = "half_plus_two"
    response.model_spec.version.value = 3
    y = response.outputs["y"]
    y.dtype = types_pb2.DT_FLOAT
    y.tensor_shape.dim.add(size=3)
    y.tensor_content = b"\x00\x00\x20\x40" * 3
    ours_out = response.SerializeToString(deterministic=True)

    lines = run_python(CLIENT, ours_out.hex(), path=upstream_stubs).split()
    client_request, echoed, full_name = bytes.fromhex(lines[0]), bytes.fromhex(lines[1]), lines[2]
    assert full_name == "tensorflow.serving.PredictRequest"
    parsed = predict_pb2.PredictRequest.FromString(client_request)
    assert parsed == sample_predict_request()
    assert parsed.SerializeToString(deterministic=True) == client_request
    assert echoed == ours_out


def test_upstream_layout_compiles_triton_too(upstream_stubs: Path) -> None:
    code = """
    import inference.grpc_service_pb2 as pb, inference.grpc_service_pb2_grpc as g
    print(pb.ModelInferRequest.DESCRIPTOR.full_name, g.GRPCInferenceServiceStub.__name__)
    """
    out = run_python(code, path=upstream_stubs)
    assert out.split() == ["inference.ModelInferRequest", "GRPCInferenceServiceStub"]


# --- generation -------------------------------------------------------------------------


def test_generate_into_a_fresh_root(tmp_path: Path) -> None:
    package = tmp_path / "pier" / "serving" / "protocols" / "grpc" / "protos"
    stale = package / "gone_pb2.py"
    stale.parent.mkdir(parents=True)
    stale.write_text("")
    assert generate.main(["--out", str(tmp_path)]) == 0
    assert not stale.exists()
    protos = generate.proto_files()
    assert len(protos) >= 20
    for proto in protos:
        module = package / proto.relative_to(generate.PROTO_DIR).with_suffix("")
        assert module.with_name(module.name + "_pb2.py").is_file()
        assert module.with_name(module.name + "_pb2.pyi").is_file()
        assert (module.parent / "__init__.py").is_file()
    grpc_modules = sorted(p.name for p in package.rglob("*_pb2_grpc.py"))
    assert grpc_modules == [
        "grpc_service_pb2_grpc.py",
        "model_service_pb2_grpc.py",
        "prediction_service_pb2_grpc.py",
    ]


def test_no_top_level_packages_and_no_grpc_in_the_codecs() -> None:
    code = """
    import sys
    import pier.serving.protocols.grpc
    assert "grpc" not in sys.modules
    import pier.serving.protocols.grpc.tfs_codec
    import pier.serving.protocols.grpc.v2_codec
    from pier.serving.protocols.grpc.protos.tensorflow_serving.apis import get_model_status_pb2
    print(",".join(sorted(m for m in sys.modules if m.split(".")[0] in
                          ("grpc", "tensorflow", "tensorflow_serving", "inference"))))
    """
    assert run_python(code).strip() == ""
