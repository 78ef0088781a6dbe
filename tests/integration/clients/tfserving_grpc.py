"""Call a server through TF Serving's gRPC stubs, as a TF Serving user would.

Run as ``python tfserving_grpc.py HOST:PORT`` with the stubs generated from TF Serving's
protocol definitions (upstream file layout: ``tensorflow_serving/apis/...``) on
``PYTHONPATH``. Prints one JSON object.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import grpc
import numpy as np
from google.protobuf import wrappers_pb2
from tensorflow.core.framework import tensor_pb2, tensor_shape_pb2, types_pb2
from tensorflow_serving.apis import (
    classification_pb2,
    get_model_metadata_pb2,
    get_model_status_pb2,
    model_service_pb2_grpc,
    predict_pb2,
    prediction_service_pb2_grpc,
    regression_pb2,
)


def _tensor(values: list[float], dtype: int = types_pb2.DT_FLOAT) -> Any:
    """Built the way tf.make_tensor_proto does it: shape plus raw tensor_content."""
    arr = np.asarray(values, dtype=np.float32 if dtype == types_pb2.DT_FLOAT else np.float64)
    shape = tensor_shape_pb2.TensorShapeProto(
        dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=n) for n in arr.shape]
    )
    return tensor_pb2.TensorProto(dtype=dtype, tensor_shape=shape, tensor_content=arr.tobytes())


def _code(fn: Any) -> str | None:
    try:
        fn()
    except grpc.RpcError as exc:
        return exc.code().name
    return None


def main() -> None:
    channel = grpc.insecure_channel(sys.argv[1])
    predict = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    models = model_service_pb2_grpc.ModelServiceStub(channel)
    out: dict[str, Any] = {}

    req = predict_pb2.PredictRequest()
    req.model_spec.name = "half_plus_two"
    req.model_spec.signature_name = "serving_default"
    req.inputs["x"].CopyFrom(_tensor([1.0, 2.0, 5.0]))
    resp = predict.Predict(req, timeout=10)
    y = resp.outputs["y"]
    out["predict"] = np.frombuffer(y.tensor_content, np.float32).tolist() or list(y.float_val)
    out["predict_dtype"] = y.dtype
    out["predict_version"] = resp.model_spec.version.value

    # typed values instead of tensor_content, and an explicit version
    typed = predict_pb2.PredictRequest()
    typed.model_spec.name = "scaler"
    typed.model_spec.version.CopyFrom(wrappers_pb2.Int64Value(value=1))
    t = typed.inputs["x"]
    t.dtype = types_pb2.DT_FLOAT
    t.tensor_shape.dim.add(size=1)
    t.tensor_shape.dim.add(size=4)
    t.float_val.extend([1.0, 2.0, 3.0, 4.0])
    r = predict.Predict(typed, timeout=10).outputs["y"]
    out["typed"] = np.frombuffer(r.tensor_content, np.float32).tolist() or list(r.float_val)

    label = predict_pb2.PredictRequest()
    label.model_spec.name = "scaler"
    label.model_spec.version_label = "canary"
    label.inputs["x"].CopyFrom(typed.inputs["x"])
    out["label_version"] = predict.Predict(label, timeout=10).model_spec.version.value

    meta = get_model_metadata_pb2.GetModelMetadataRequest()
    meta.model_spec.name = "half_plus_two"
    meta.metadata_field.append("signature_def")
    md = predict.GetModelMetadata(meta, timeout=10)
    sigs = get_model_metadata_pb2.SignatureDefMap()
    md.metadata["signature_def"].Unpack(sigs)
    sig = sigs.signature_def["serving_default"]
    out["signature_inputs"] = {k: v.dtype for k, v in sig.inputs.items()}
    out["signature_method"] = sig.method_name

    status = get_model_status_pb2.GetModelStatusRequest()
    status.model_spec.name = "broken"
    st = models.GetModelStatus(status, timeout=10).model_version_status[0]
    out["broken_state"] = st.state
    out["broken_error"] = st.status.error_message
    status.model_spec.name = "scaler"
    out["scaler_versions"] = [
        (v.version, v.state) for v in models.GetModelStatus(status, timeout=10).model_version_status
    ]

    cls = classification_pb2.ClassificationRequest()
    cls.model_spec.name = "iris"
    example = cls.input.example_list.examples.add()
    for name, value in (
        ("sepal_length", 5.1),
        ("sepal_width", 3.5),
        ("petal_length", 1.4),
        ("petal_width", 0.2),
    ):
        example.features.feature[name].float_list.value.append(value)
    classes = predict.Classify(cls, timeout=10).result.classifications[0].classes
    out["classify"] = [[c.label, c.score] for c in classes]

    reg = regression_pb2.RegressionRequest()
    reg.model_spec.name = "linear"
    reg.input.example_list_with_context.context.features.feature["x0"].float_list.value.append(1.0)
    ex = reg.input.example_list_with_context.examples.add()
    ex.features.feature["x1"].int64_list.value.append(0)
    ex.features.feature["x2"].float_list.value.append(0.0)
    out["regress"] = [r.value for r in predict.Regress(reg, timeout=10).result.regressions]

    strings = predict_pb2.PredictRequest()
    strings.model_spec.name = "pyfunc"
    text = strings.inputs["text"]
    text.dtype = types_pb2.DT_STRING
    text.tensor_shape.dim.add(size=2)
    text.string_val.extend([b"ab", b"xyz"])
    sresp = predict.Predict(strings, timeout=10)
    out["string_upper"] = [v.decode() for v in sresp.outputs["upper"].string_val]
    out["string_length"] = np.frombuffer(sresp.outputs["length"].tensor_content, np.int64).tolist()

    missing = predict_pb2.PredictRequest()
    missing.model_spec.name = "nope"
    missing.inputs["x"].CopyFrom(_tensor([1.0]))
    out["unknown_model"] = _code(lambda: predict.Predict(missing, timeout=10))
    wrong = predict_pb2.PredictRequest()
    wrong.model_spec.name = "half_plus_two"
    wrong.inputs["x"].CopyFrom(_tensor([1.0], types_pb2.DT_DOUBLE))
    out["wrong_dtype"] = _code(lambda: predict.Predict(wrong, timeout=10))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
