"""TensorFlow Serving REST codec: predict, classify and regress bodies <-> numpy.

Pure functions on the per-request path. TF Serving's JSON carries no dtypes, so predict
inputs are converted to the datatypes the model declares.

Choices where TF Serving's behaviour does not carry over:

- With no declared inputs, a bare tensor (or list of bare rows) becomes the input named
  ``"input"``, and objects name their own inputs. Types are inferred: all booleans ->
  BOOL, all integers -> INT64 (UINT64 past its range), any float -> FP32, strings or
  ``{"b64": ...}`` -> BYTES.
- Input shapes are not checked against the declared shapes here; callers do that.
- NaN, Infinity and -Infinity are read and written literally, as TF Serving does. The
  fast writer (orjson) turns them into ``null``, so a body containing ``null`` is
  re-checked and, when an output really is non-finite, written again the slow way.
- A BYTES output whose name does not end in ``_bytes`` is written as UTF-8 strings,
  except elements that are not valid UTF-8, which are written as ``{"b64": ...}``.
- FP16 and BF16 outputs are written as numbers (TF Serving rejects half precision).
- ``decode_examples`` with no feature names orders the columns by sorted feature name;
  with names, features not named are ignored. Each feature holds one number.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from pier.errors import InternalError, InvalidInput
from pier.serving.protocols.arrays import array_from_json, check_nesting
from pier.serving.protocols.bounds import DEFAULT_MAX_ELEMENTS, TooManyElements
from pier.serving.tensors import TensorSpec

Array = np.ndarray[Any, Any]

_NUMPY = orjson.OPT_SERIALIZE_NUMPY
_F32 = np.dtype(np.float32)
_DEFAULT_SIGNATURE = "serving_default"
_UNNAMED = "input"


@dataclass(slots=True)
class PredictRequest:
    """A decoded predict request."""

    signature_name: str
    inputs: dict[str, Array]
    row_format: bool  # True for "instances", False for "inputs"


# --- predict --------------------------------------------------------------------------


def decode_predict(
    body: bytes, inputs: list[TensorSpec], max_elements: int = DEFAULT_MAX_ELEMENTS
) -> PredictRequest:
    """Decode a predict body into arrays of the model's declared input datatypes.

    An input holding more than ``max_elements`` elements is refused before numpy holds it.
    """
    doc = _load_object(body)
    signature = _signature(doc) if "signature_name" in doc else _DEFAULT_SIGNATURE
    if "instances" in doc:
        if "inputs" in doc:
            raise InvalidInput(
                "request has both 'instances' (row format) and 'inputs' (columnar format); "
                "send one of them"
            )
        rows = _decode_rows(doc["instances"], inputs, max_elements)
        return PredictRequest(signature, rows, True)
    if "inputs" in doc:
        columns = _decode_columns(doc["inputs"], inputs, max_elements)
        return PredictRequest(signature, columns, False)
    raise InvalidInput("request needs 'instances' (row format) or 'inputs' (columnar format)")


def _decode_rows(rows: Any, specs: list[TensorSpec], max_elements: int) -> dict[str, Array]:
    if type(rows) is not list:
        raise InvalidInput("'instances' must be a list with one entry per row")
    if not rows:
        raise InvalidInput("'instances' is empty; send at least one row")
    if len(specs) == 1 and type(rows[0]) is not dict and specs[0].datatype != "BYTES":
        # The usual request: rows of numbers for a model with one numeric input. When numpy
        # reads every row as numbers, no row is an object, so the checks below would pass:
        # convert the array numpy made instead. Anything else takes the full path.
        spec = specs[0]
        try:
            check_nesting(rows, max_elements)
        except (InvalidInput, TooManyElements) as exc:
            raise _input_error(exc, spec.name, "instances") from None
        try:
            raw = np.asarray(rows)
        except ValueError:
            raw = None  # ragged: the full path says so
        if raw is not None and raw.dtype.kind in "biuf":
            try:
                return {spec.name: array_from_json(rows, spec.datatype, b64=True, raw=raw)}
            except InvalidInput as exc:
                raise _input_error(exc, spec.name, "instances") from None
    if not _is_named(rows[0]):
        name = _single_input(specs, "each instance")
        for i, row in enumerate(rows):
            if _is_named(row):
                raise InvalidInput(f"instances[{i}] is an object but instances[0] is not")
        return {name: _convert(rows, specs, name, "instances", max_elements)}
    keys = rows[0].keys()
    for i, row in enumerate(rows):
        if not _is_named(row):
            raise InvalidInput(f"instances[{i}] is not an object but instances[0] is")
        if row.keys() != keys:
            raise InvalidInput(
                f"instances[{i}] has inputs {_names(row)} but instances[0] has "
                f"{_names(keys)}; every instance needs the same inputs"
            )
    names = _check_names(keys, specs)
    return {
        k: _convert([row[k] for row in rows], specs, k, "instances", max_elements) for k in names
    }


def _decode_columns(value: Any, specs: list[TensorSpec], max_elements: int) -> dict[str, Array]:
    if not _is_named(value):
        name = _single_input(specs, "'inputs'")
        return {name: _convert(value, specs, name, "inputs", max_elements)}
    names = _check_names(value.keys(), specs)
    return {k: _convert(value[k], specs, k, "inputs", max_elements) for k in names}


def _is_named(value: Any) -> bool:
    # An object maps input names to values, unless it is a {"b64": ...} string value.
    return type(value) is dict and not (len(value) == 1 and "b64" in value)


def _single_input(specs: list[TensorSpec], what: str) -> str:
    if len(specs) > 1:
        raise InvalidInput(
            f"the model has inputs {_names(s.name for s in specs)}: {what} must be an "
            "object keyed by input name"
        )
    return specs[0].name if specs else _UNNAMED


def _names(names: Any) -> str:
    return ", ".join(f"'{n}'" for n in names)


def _check_names(given: Any, specs: list[TensorSpec]) -> list[str]:
    if not specs:
        return list(given)
    declared = [s.name for s in specs]
    unknown = [k for k in given if k not in declared]
    if unknown:
        raise InvalidInput(
            f"unknown input {_names(unknown)}; the model's inputs are {_names(declared)}"
        )
    missing = [k for k in declared if k not in given]
    if missing:
        raise InvalidInput(f"missing input {_names(missing)}")
    return declared


def _convert(
    value: Any, specs: list[TensorSpec], name: str, where: str, max_elements: int
) -> Array:
    try:
        for spec in specs:
            if spec.name == name:
                return array_from_json(value, spec.datatype, b64=True, max_elements=max_elements)
        return _infer(value, max_elements)
    except (InvalidInput, TooManyElements) as exc:
        raise _input_error(exc, name, where) from None


def _input_error(
    exc: InvalidInput | TooManyElements, name: str, where: str
) -> InvalidInput | TooManyElements:
    return type(exc)(f"input '{name}' ({where}): {exc.message}")


def _infer(value: Any, max_elements: int) -> Array:
    check_nesting(value, max_elements)
    try:
        kind = np.asarray(value).dtype.kind
    except ValueError:
        raise InvalidInput("nested data is ragged (lists at one level differ in length)") from None
    if kind == "b":
        return array_from_json(value, "BOOL")
    if kind == "i":
        return array_from_json(value, "INT64")
    if kind == "u":
        return array_from_json(value, "UINT64")
    if kind == "f":
        return array_from_json(value, "FP32")
    return array_from_json(value, "BYTES", b64=True)


def encode_predict(outputs: dict[str, Array], row_format: bool) -> bytes:
    """Write outputs as ``{"predictions": ...}`` (row format) or ``{"outputs": ...}``."""
    if len(outputs) == 1:  # one output is written alone, in either format
        [(name, arr)] = outputs.items()
        key = "predictions" if row_format else "outputs"
        return _dumps({key: _jsonable(name, arr)}, (arr,))
    columns = {name: _jsonable(name, arr) for name, arr in outputs.items()}
    if not row_format:
        return _dumps({"outputs": columns}, outputs.values())
    sizes = {name: arr.shape[0] if arr.ndim else -1 for name, arr in outputs.items()}
    distinct = set(sizes.values())
    if len(distinct) > 1 or -1 in distinct:
        listed = ", ".join(f"'{k}': {'scalar' if v < 0 else v}" for k, v in sizes.items())
        raise InvalidInput(
            f"outputs have different batch sizes ({listed}), so they cannot be returned "
            "as rows; use the columnar 'inputs' format"
        )
    n = distinct.pop() if distinct else 0
    rows = [{k: col[i] for k, col in columns.items()} for i in range(n)]
    return _dumps({"predictions": rows}, outputs.values())


def _jsonable(name: str, arr: Array) -> Any:
    # numeric -> a C-contiguous native array that orjson writes itself; BYTES -> nested lists
    kind = arr.dtype.kind
    if kind in "biuf" and arr.dtype.isnative:  # the usual case: no conversion
        if arr.ndim == 0:
            return arr[()]  # orjson writes numpy scalars, not 0-d arrays
        return arr if arr.flags.c_contiguous else arr.copy()
    if kind in "OSU":
        as_b64 = name.endswith("_bytes")
        items = arr.reshape(-1).tolist()
        out = np.empty(len(items), dtype=object)
        try:
            out[:] = [_text(x, as_b64) for x in items]
        except InternalError as exc:
            raise InternalError(f"output '{name}': {exc.message}") from None
        return out.reshape(arr.shape).tolist()
    if arr.dtype.kind == "V" and arr.dtype.name == "bfloat16":  # .name alone costs ~2 us
        arr = arr.astype(_F32)
    elif not arr.dtype.isnative:
        arr = arr.astype(arr.dtype.newbyteorder("="))
    if arr.dtype.kind not in "biuf":
        raise InternalError(f"output '{name}' has numpy dtype {arr.dtype}, which JSON cannot carry")
    if arr.ndim == 0:
        return arr[()]  # orjson writes numpy scalars, not 0-d arrays
    return arr if arr.flags.c_contiguous else arr.copy()


def _text(x: Any, as_b64: bool) -> Any:
    if type(x) is str:
        return {"b64": base64.b64encode(x.encode()).decode()} if as_b64 else x
    if not isinstance(x, bytes | bytearray | memoryview):
        raise InternalError(f"BYTES tensor holds a {type(x).__name__}, not bytes or str")
    if not as_b64:
        try:
            return bytes(x).decode()
        except UnicodeDecodeError:
            pass  # not text: fall through to base64 rather than lose bytes
    return {"b64": base64.b64encode(x).decode()}


# --- classify and regress -------------------------------------------------------------


def decode_examples(body: bytes, feature_names: list[str] | None) -> tuple[str, Array]:
    """Decode a classify/regress body into (signature, float64 matrix [examples, features])."""
    doc = _load_object(body)
    signature = _signature(doc)
    context = doc.get("context", {})
    if type(context) is not dict:
        raise InvalidInput("'context' must be an object of feature values")
    examples = doc.get("examples")
    if type(examples) is not list or not examples:
        raise InvalidInput("request needs 'examples', a non-empty list of objects")
    for i, example in enumerate(examples):
        if type(example) is not dict:
            raise InvalidInput(f"examples[{i}] must be an object of feature values")
    return signature, feature_matrix(context, examples, feature_names, _feature)


def feature_matrix(
    context: Mapping[str, Any],
    examples: Sequence[Mapping[str, Any]],
    feature_names: list[str] | None,
    value_of: Callable[[Any, str, str], float],
) -> Array:
    """Rows of feature values in ``feature_names`` order (sorted names when None).

    A feature missing from an example is taken from ``context``. ``value_of(raw, where,
    name)`` turns one raw feature (JSON value, tf.Example Feature) into a float. Shared by
    the REST and gRPC classify/regress paths.
    """
    shared = {k: value_of(v, "context", k) for k, v in context.items()}
    names = feature_names
    if names is None:
        names = sorted(set(shared).union(*(e.keys() for e in examples)))
    rows: list[list[float]] = []
    for i, example in enumerate(examples):
        row: list[float] = []
        for feature in names:
            if feature in example:
                row.append(value_of(example[feature], f"examples[{i}]", feature))
            elif feature in shared:
                row.append(shared[feature])
            else:
                raise InvalidInput(f"examples[{i}] has no feature '{feature}' (nor has 'context')")
        rows.append(row)
    try:
        matrix = np.array(rows, dtype=np.float64)
    except OverflowError:
        raise InvalidInput("a feature value is too large for a 64-bit float") from None
    return matrix.reshape(len(rows), len(names))


def _feature(value: Any, where: str, feature: str) -> float:
    if type(value) is list:
        if len(value) != 1:
            raise InvalidInput(
                f"feature '{feature}' in {where} has {len(value)} values; one is supported"
            )
        value = value[0]
    if type(value) is not int and type(value) is not float:
        shown = orjson.dumps(value, default=repr).decode()[:40]
        raise InvalidInput(
            f"feature '{feature}' in {where} is {shown}; only numeric features are supported"
        )
    return value


def encode_classify(labels: list[str], scores: Array) -> bytes:
    """Write ``{"results": [[[label, score], ...] per example]}``."""
    if scores.ndim != 2 or scores.shape[1] != len(labels):
        raise InternalError(
            f"classification scores have shape {list(scores.shape)}, expected "
            f"[examples, {len(labels)}] for {len(labels)} labels"
        )
    values = _jsonable("scores", scores)
    results = [[[label, s] for label, s in zip(labels, row, strict=True)] for row in values]
    return _dumps({"results": results}, [scores])


def encode_regress(values: Array) -> bytes:
    """Write ``{"results": [value, ...]}``, one value per example."""
    if values.ndim == 2 and values.shape[1] == 1:
        values = values.reshape(-1)
    if values.ndim != 1:
        raise InternalError(
            f"regression output has shape {list(values.shape)}, expected [examples]"
        )
    return _dumps({"results": _jsonable("values", values)}, [values])


def encode_error(message: str) -> bytes:
    """The TF Serving error body, ``{"error": message}``."""
    return orjson.dumps({"error": message})


# --- JSON with TF Serving's NaN and Infinity ------------------------------------------


def _load_object(body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth" in str(exc):  # orjson stops at 1024 levels; the fallback would recurse
            raise InvalidInput(f"request body is nested too deeply: {exc}") from None
        try:  # the standard library also reads NaN, Infinity and -Infinity
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise InvalidInput(f"request body is not valid JSON: {exc}") from None
        except RecursionError:  # deep nesting next to a NaN, which orjson refused first
            raise InvalidInput("request body is nested too deeply") from None
    if type(doc) is not dict:
        raise InvalidInput("request body must be a JSON object")
    return doc


def _signature(doc: dict[str, Any]) -> str:
    signature = doc.get("signature_name", _DEFAULT_SIGNATURE)
    if type(signature) is not str:
        raise InvalidInput("'signature_name' must be a string")
    return signature or _DEFAULT_SIGNATURE


def _dumps(payload: Any, arrays: Any) -> bytes:
    body = orjson.dumps(payload, option=_NUMPY)
    if b"null" in body and any(
        a.dtype.kind in "fV" and not bool(np.isfinite(a.astype(np.float64)).all()) for a in arrays
    ):
        text = json.dumps(_plain(payload), ensure_ascii=False, separators=(",", ":"))
        return text.encode()
    return body


def _plain(obj: Any) -> Any:
    # Slow path only: numpy -> Python values, floats keeping their shortest float32 form.
    if isinstance(obj, dict):
        return {k: _plain(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.ndarray | np.generic):
        arr = np.asarray(obj)
        if arr.dtype.kind == "f" and arr.dtype.itemsize < 8:
            return arr.astype(str).astype(np.float64).tolist()
        return arr.tolist()
    return obj
