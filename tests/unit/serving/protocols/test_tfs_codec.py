"""TF Serving REST codec: predict row and columnar forms, b64, classify and regress bodies."""

from __future__ import annotations

import json
from typing import Any

import ml_dtypes
import numpy as np
import orjson
import pytest

from pier.errors import InternalError, InvalidInput
from pier.serving.protocols import tfs_codec as tf
from pier.serving.tensors import TensorSpec

X = TensorSpec("x", "FP32", (-1, 2))
K = TensorSpec("k", "INT64", (-1,))
S = TensorSpec("s", "BYTES", (-1,))


def decode(doc: Any, specs: list[TensorSpec]) -> tf.PredictRequest:
    return tf.decode_predict(json.dumps(doc).encode(), specs)


def same(actual: np.ndarray, expected: Any, dtype: Any) -> None:
    assert actual.dtype == np.dtype(dtype)
    assert actual.tolist() == expected


# --- predict requests -----------------------------------------------------------------


def test_rows_for_a_single_input() -> None:
    request = decode({"instances": [[1, 2], [3.5, 4]]}, [X])
    assert request.signature_name == "serving_default"
    assert request.row_format is True
    same(request.inputs["x"], [[1.0, 2.0], [3.5, 4.0]], np.float32)
    named = decode({"signature_name": "sig", "instances": [{"x": [1, 2]}, {"x": [3, 4]}]}, [X])
    assert named.signature_name == "sig"
    same(named.inputs["x"], [[1.0, 2.0], [3.0, 4.0]], np.float32)
    scalars = decode({"instances": [7, 8, 9]}, [K])
    same(scalars.inputs["k"], [7, 8, 9], np.int64)


def test_rows_for_several_inputs_are_stacked_in_declared_order() -> None:
    request = decode(
        {"instances": [{"s": "a", "x": [1, 2], "k": 5}, {"k": 6, "x": [3, 4], "s": "b"}]},
        [X, K, S],
    )
    assert list(request.inputs) == ["x", "k", "s"]
    same(request.inputs["x"], [[1.0, 2.0], [3.0, 4.0]], np.float32)
    same(request.inputs["k"], [5, 6], np.int64)
    same(request.inputs["s"], [b"a", b"b"], object)


def test_columnar_forms() -> None:
    bare = decode({"inputs": [[1, 2]]}, [X])
    assert bare.row_format is False
    same(bare.inputs["x"], [[1.0, 2.0]], np.float32)
    named = decode({"inputs": {"x": [[1, 2], [3, 4]], "k": [1, 2, 3]}}, [X, K])
    same(named.inputs["x"], [[1.0, 2.0], [3.0, 4.0]], np.float32)
    same(named.inputs["k"], [1, 2, 3], np.int64)  # columnar batch sizes may differ
    scalar = decode({"inputs": 3}, [K])
    same(scalar.inputs["k"], 3, np.int64)


def test_b64_anywhere_in_a_bytes_tensor() -> None:
    request = decode(
        {"instances": [{"s": {"b64": "AP8="}}, {"s": "plain"}]}, [S]
    )  # a {"b64"} row is a value, not an object of inputs
    same(request.inputs["s"], [b"\x00\xff", b"plain"], object)
    bare = decode({"instances": [{"b64": "aGk="}]}, [S])
    same(bare.inputs["s"], [b"hi"], object)
    nested = decode({"inputs": {"s": [[{"b64": "YQ=="}, "b"], ["c", {"b64": ""}]]}}, [S])
    same(nested.inputs["s"], [[b"a", b"b"], [b"c", b""]], object)


def test_nan_and_infinity_literals_are_read() -> None:
    request = tf.decode_predict(b'{"instances": [[NaN, Infinity], [-Infinity, 1]]}', [X])
    arr = request.inputs["x"]
    assert arr.dtype == np.float32
    assert np.isnan(arr[0, 0])
    assert arr[0, 1] == np.inf
    assert arr[1, 0] == -np.inf


def test_types_are_inferred_without_declared_inputs() -> None:
    bare = decode({"instances": [[1.5, 2], [3, 4]]}, [])
    same(bare.inputs["input"], [[1.5, 2.0], [3.0, 4.0]], np.float32)
    objects = decode(
        {"instances": [{"i": 1, "b": True, "t": "x", "r": {"b64": "eQ=="}, "u": 2**63}]}, []
    )
    same(objects.inputs["i"], [1], np.int64)
    same(objects.inputs["b"], [True], np.bool_)
    same(objects.inputs["t"], [b"x"], object)
    same(objects.inputs["r"], [b"y"], object)
    same(objects.inputs["u"], [2**63], np.uint64)
    columns = decode({"inputs": {"a": [1, 2], "z": []}}, [])
    same(columns.inputs["a"], [1, 2], np.int64)
    same(columns.inputs["z"], [], np.float32)


@pytest.mark.parametrize(
    ("doc", "specs", "match"),
    [
        ({"instances": [[1, 2]], "inputs": [[1, 2]]}, [X], "both 'instances' .* and 'inputs'"),
        ({"signature_name": "s"}, [X], "needs 'instances' .* or 'inputs'"),
        ({"instances": {"x": [1, 2]}}, [X], "'instances' must be a list"),
        ({"instances": []}, [X], "'instances' is empty"),
        ({"instances": [[1, 2]], "signature_name": 3}, [X], "'signature_name' must be a string"),
        ({"instances": [{"x": [1, 2], "y": 1}]}, [X], "unknown input 'y'; the model's inputs are 'x'"),
        ({"instances": [{"x": [1, 2]}]}, [X, K], "missing input 'k'"),
        ({"inputs": {"x": [1, 2], "q": 1}}, [X, K], "unknown input 'q'"),
        ({"inputs": {"k": [1]}}, [X, K], "missing input 'x'"),
        ({"instances": [[1, 2]]}, [X, K], "model has inputs 'x', 'k': each instance must be an object"),
        ({"inputs": [[1, 2]]}, [X, K], "'inputs' must be an object keyed by input name"),
        ({"instances": [{"x": [1, 2], "k": 1}, {"x": [3, 4]}]}, [X, K],
         r"instances\[1\] has inputs 'x' but instances\[0\] has 'x', 'k'"),
        ({"instances": [{"x": [1, 2], "k": 1}, [3, 4]]}, [X, K], r"instances\[1\] is not an object"),
        ({"instances": [[1, 2], {"x": [3, 4]}]}, [X], r"instances\[1\] is an object but"),
        ({"instances": [[1, 2], [3]]}, [X], r"input 'x' \(instances\): nested data is ragged"),
        ({"instances": [{"x": [1, 2]}, {"x": [3]}]}, [X], r"input 'x' \(instances\): nested data is ragged"),
        ({"inputs": {"s": [["a"], ["b", "c"]]}}, [S], r"input 's' \(inputs\): nested data is ragged"),
        ({"instances": [[1, "2"]]}, [X], r"input 'x' \(instances\): FP32 data must be numbers; found \"2\""),
        ({"instances": [1.5]}, [K], r"input 'k' \(instances\): INT64 data must be integers; found 1.5"),
        ({"instances": [1]}, [S], r"input 's' \(instances\): BYTES data must be strings; found 1"),
        ({"instances": [{"b64": "!!"}]}, [S], r"input 's' \(instances\): \{\"b64\":\"!!\"\} is not valid base64"),
        ({"instances": [{"b64": "YQ==", "x": 1}]}, [S], r"unknown input 'b64', 'x'"),
        ({"instances": [[1, "a"]]}, [], r"input 'input' \(instances\): BYTES data must be strings; found 1"),
        ({"instances": [[1], [2, 3]]}, [], r"input 'input' \(instances\): nested data is ragged"),
    ],
)  # fmt: skip
def test_malformed_predict_is_invalid_input(doc: Any, specs: list[TensorSpec], match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        decode(doc, specs)


@pytest.mark.parametrize(
    ("payload", "match"),
    [(b"{nope", "not valid JSON"), (b"[1]", "must be a JSON object"), (b"", "not valid JSON")],
)
def test_predict_body_must_be_a_json_object(payload: bytes, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        tf.decode_predict(payload, [X])


B = TensorSpec("b", "BOOL", (-1,))
I8 = TensorSpec("i", "INT8", (-1,))
F = TensorSpec("f", "FP32", (-1,))


@pytest.mark.parametrize(
    ("body", "spec", "expected"),
    [
        # rows of numbers for one numeric input skip the per-row checks ...
        (b'{"instances": [1.0]}', F, [1.0]),
        (b'{"instances": [[1, 2.5], [3, 4]]}', F, [[1.0, 2.5], [3.0, 4.0]]),
        (b'{"instances": [2.0, -3]}', I8, [2, -3]),
        (b'{"instances": [true, false]}', B, [True, False]),
        (b'{"instances": [[]]}', F, [[]]),
        (b'{"instances": [NaN]}', F, "nan"),
        # ... and still say what the full path says about their values
        (b'{"instances": [1e300]}', F, r"input 'f' \(instances\): value 1e\+300 is out of range"),
        (b'{"instances": [300]}', I8, r"input 'i' \(instances\): value 300 is out of range"),
        (b'{"instances": [true]}', F, r"input 'f' \(instances\): FP32 data must be numbers"),
        (b'{"instances": [1.5]}', B, r"input 'b' \(instances\): BOOL data must be true or false"),
        (b'{"instances": [2.5]}', I8, r"INT8 data must be integers; found 2.5"),
        # anything else takes the full path
        (b'{"instances": [1.0, {"f": 1}]}', F, r"instances\[1\] is an object but instances\[0\]"),
        (b'{"instances": [{"f": 1.5}]}', F, [1.5]),
        (
            b'{"instances": [[1.0], [2.0, 3.0]]}',
            F,
            r"input 'f' \(instances\): nested data is ragged",
        ),
        (b'{"instances": [1.0, null]}', F, r"FP32 data must be numbers; found null"),
        (b'{"instances": [1.0, "a"]}', F, r"FP32 data must be numbers; found \"a\""),
        (b'{"instances": [{"b64": "aGk="}]}', F, r"FP32 data must be numbers; found \{\"b64\""),
        (b'{"instances": [123456789012345678901234567890]}', F, [1.2345679e29]),
    ],
)
def test_rows_of_numbers_for_one_input(body: bytes, spec: TensorSpec, expected: Any) -> None:
    if isinstance(expected, str) and expected != "nan":
        with pytest.raises(InvalidInput, match=expected):
            tf.decode_predict(body, [spec])
        return
    arr = tf.decode_predict(body, [spec]).inputs[spec.name]
    assert arr.dtype == {"FP32": np.float32, "INT8": np.int8, "BOOL": np.bool_}[spec.datatype]
    if expected == "nan":
        assert np.isnan(arr).all()
    else:
        np.testing.assert_array_equal(arr, np.array(expected, dtype=arr.dtype))


def test_signature_name_is_optional() -> None:
    assert decode({"instances": [[1, 2]]}, [X]).signature_name == "serving_default"
    assert decode({"signature_name": "", "instances": [[1, 2]]}, [X]).signature_name == (
        "serving_default"
    )
    assert decode({"signature_name": "s", "inputs": [[1, 2]]}, [X]).signature_name == "s"


# --- predict responses ----------------------------------------------------------------


def test_row_format_one_output() -> None:
    y = np.array([[0.1, 2.0], [3.0, 4.5]], dtype=np.float32)
    assert tf.encode_predict({"y": y}, row_format=True) == b'{"predictions":[[0.1,2.0],[3.0,4.5]]}'


def test_row_format_several_outputs_become_objects_per_row() -> None:
    outputs = {
        "score": np.array([0.5, 0.25], dtype=np.float32),
        "vec": np.array([[1, 2], [3, 4]], dtype=np.int32),
        "ok": np.array([True, False]),
        "word": np.array([b"a", "b"], dtype=object),
    }
    assert orjson.loads(tf.encode_predict(outputs, row_format=True)) == {
        "predictions": [
            {"score": 0.5, "vec": [1, 2], "ok": True, "word": "a"},
            {"score": 0.25, "vec": [3, 4], "ok": False, "word": "b"},
        ]
    }


def test_row_format_needs_one_batch_size() -> None:
    with pytest.raises(InvalidInput, match=r"'a': 2, 'b': 3.*use the columnar 'inputs' format"):
        tf.encode_predict({"a": np.zeros(2), "b": np.zeros(3)}, row_format=True)
    with pytest.raises(InvalidInput, match="'b': scalar"):
        tf.encode_predict({"a": np.zeros(2), "b": np.array(1, np.float32)}, row_format=True)


def test_no_outputs() -> None:
    assert tf.encode_predict({}, row_format=True) == b'{"predictions":[]}'
    assert tf.encode_predict({}, row_format=False) == b'{"outputs":{}}'


def test_columnar_format() -> None:
    y = np.array([1, 2], dtype=np.int64)
    assert tf.encode_predict({"y": y}, row_format=False) == b'{"outputs":[1,2]}'
    assert tf.encode_predict({"y": np.array(0.5, np.float32)}, False) == b'{"outputs":0.5}'
    assert tf.encode_predict({"s": np.array("a")}, False) == b'{"outputs":"a"}'
    z = np.array([[1.5]], dtype=np.float64)
    both = orjson.loads(tf.encode_predict({"y": y, "z": z}, row_format=False))
    assert both == {"outputs": {"y": [1, 2], "z": [[1.5]]}}


def test_bytes_outputs() -> None:
    outputs = {
        "image_bytes": np.array([b"\x00\xff", b"hi"], dtype=object),
        "label": np.array([b"cat", b"\xff\xfe"], dtype=object),
    }
    assert orjson.loads(tf.encode_predict(outputs, row_format=False)) == {
        "outputs": {
            "image_bytes": [{"b64": "AP8="}, {"b64": "aGk="}],
            "label": ["cat", {"b64": "//4="}],  # not UTF-8: b64 rather than lose bytes
        }
    }
    strings = np.array([["é", "x"]])  # a numpy str array, also BYTES
    assert (
        tf.encode_predict({"t_bytes": strings}, False)
        == b'{"outputs":[[{"b64":"w6k="},{"b64":"eA=="}]]}'
    )
    with pytest.raises(InternalError, match="output 'o': BYTES tensor holds a int"):
        tf.encode_predict({"o": np.array([1], dtype=object)}, False)


def test_non_finite_floats_are_written_like_tf_serving() -> None:
    y = np.array([0.1, np.nan, np.inf, -np.inf], dtype=np.float32)
    assert tf.encode_predict({"y": y}, True) == b'{"predictions":[0.1,NaN,Infinity,-Infinity]}'
    both = tf.encode_predict({"y": y, "w": np.array(["null"] * 4)}, True)
    assert both.startswith(b'{"predictions":[{"y":0.1,"w":"null"},{"y":NaN,"w":"null"}')
    # "null" in a string alone keeps the fast writer's output
    finite = tf.encode_predict({"w": np.array(["null"]), "v": np.array([0.1], np.float32)}, False)
    assert finite == b'{"outputs":{"w":["null"],"v":[0.1]}}'


def test_half_precision_outputs_are_numbers() -> None:
    outputs = {
        "h": np.array([0.5, -1.0], np.float16),
        "b": np.array([1.5], ml_dtypes.bfloat16),
    }
    assert orjson.loads(tf.encode_predict(outputs, False)) == {
        "outputs": {"h": [0.5, -1.0], "b": [1.5]}
    }
    with pytest.raises(InternalError, match="complex128"):
        tf.encode_predict({"c": np.array([1j])}, False)


def test_non_contiguous_and_big_endian_outputs() -> None:
    t = np.arange(6, dtype=np.int16).reshape(2, 3).T
    big = np.array([1.0, 2.0], dtype=">f8")
    doc = orjson.loads(tf.encode_predict({"t": t, "big": big[::-1]}, False))
    assert doc == {"outputs": {"t": [[0, 3], [1, 4], [2, 5]], "big": [2.0, 1.0]}}


# --- classify and regress -------------------------------------------------------------


def test_decode_examples_with_context_and_feature_order() -> None:
    payload = orjson.dumps(
        {
            "signature_name": "classify_x",
            "context": {"c": [1.5], "a": 0},
            "examples": [{"a": 1, "b": [2]}, {"b": 4.25, "c": 9}],
        }
    )
    signature, matrix = tf.decode_examples(payload, ["c", "b", "a"])
    assert signature == "classify_x"
    assert matrix.dtype == np.float64
    assert matrix.tolist() == [[1.5, 2.0, 1.0], [9.0, 4.25, 0.0]]  # examples override context


def test_decode_examples_sorted_union_when_no_names() -> None:
    signature, matrix = tf.decode_examples(
        b'{"examples": [{"z": 1, "a": 2}, {"a": 3, "z": 4}]}', None
    )
    assert signature == "serving_default"
    assert matrix.tolist() == [[2.0, 1.0], [3.0, 4.0]]
    _, nan = tf.decode_examples(b'{"examples": [{"a": NaN}]}', None)
    assert np.isnan(nan[0, 0])
    _, empty = tf.decode_examples(b'{"examples": [{}, {}]}', [])
    assert empty.shape == (2, 0)


@pytest.mark.parametrize(
    ("doc", "match"),
    [
        ({"examples": [{"a": 1}, {"b": 2}]}, r"examples\[1\] has no feature 'a'"),
        ({"examples": [{"a": "x"}]}, r"feature 'a' in examples\[0\] is \"x\"; only numeric"),
        ({"examples": [{"a": [1, 2]}]}, r"feature 'a' in examples\[0\] has 2 values; one is"),
        ({"examples": [{"a": []}]}, r"feature 'a' in examples\[0\] has 0 values"),
        ({"examples": [{"a": True}]}, r"feature 'a' in examples\[0\] is true"),
        ({"examples": [{"a": {"b64": "YQ=="}}]}, r"feature 'a' in examples\[0\] is \{"),
        ({"context": {"a": "x"}, "examples": [{}]}, r"feature 'a' in context is \"x\""),
        ({"context": [1], "examples": [{}]}, "'context' must be an object"),
        ({"examples": []}, "needs 'examples', a non-empty list"),
        ({"instances": [1]}, "needs 'examples'"),
        ({"examples": [1]}, r"examples\[0\] must be an object"),
        ({"examples": [{"a": 1}], "signature_name": None}, "'signature_name' must be a string"),
    ],
)
def test_malformed_examples_are_invalid_input(doc: Any, match: str) -> None:
    with pytest.raises(InvalidInput, match=match):
        tf.decode_examples(orjson.dumps(doc), ["a"] if "context" not in doc else None)


def test_huge_feature_value() -> None:
    with pytest.raises(InvalidInput, match="too large"):
        tf.decode_examples(b'{"examples": [{"a": ' + b"9" * 400 + b"}]}", None)


def test_encode_classify() -> None:
    scores = np.array([[0.1, 0.9], [0.5, np.nan]], dtype=np.float32)
    assert tf.encode_classify(["no", "yes"], scores) == (
        b'{"results":[[["no",0.1],["yes",0.9]],[["no",0.5],["yes",NaN]]]}'
    )
    with pytest.raises(InternalError, match=r"shape \[2, 2\], expected \[examples, 3\]"):
        tf.encode_classify(["a", "b", "c"], scores)


def test_encode_regress() -> None:
    assert tf.encode_regress(np.array([0.5, 1.25], np.float32)) == b'{"results":[0.5,1.25]}'
    assert tf.encode_regress(np.array([[3.0], [4.0]])) == b'{"results":[3.0,4.0]}'
    with pytest.raises(InternalError, match=r"shape \[2, 2\], expected \[examples\]"):
        tf.encode_regress(np.zeros((2, 2)))


def test_encode_error() -> None:
    assert orjson.loads(tf.encode_error("Servable not found")) == {"error": "Servable not found"}
