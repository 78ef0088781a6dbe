"""ONNX runtime: runs an ``.onnx`` graph with onnxruntime on the CPU.

Parameters (``parameters:`` in config.yaml):

- ``intra_op_threads``: threads inside one operator (0, the default, lets onnxruntime choose)
- ``inter_op_threads``: threads across independent operators (0 = onnxruntime's choice)
- ``graph_optimization_level``: ``disable``, ``basic``, ``extended`` or ``all``
- ``allow_spinning``: let idle onnxruntime threads spin-wait for the next operator (default
  false: in a server the spinning threads take the cores the event loop and the other
  requests need; measured about 25% more resnet50 throughput with it off on 2 cores)

Tensor metadata comes from the graph itself; symbolic or unknown dims are reported as -1.
Outputs that are not tensors (sequences or maps, as some converted classifiers produce)
are left out of the metadata and never computed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from pier.errors import InternalError, InvalidInput, ModelLoadError
from pier.serving.model import Array, Model
from pier.serving.modelconfig import ModelConfig
from pier.serving.runtimes._common import (
    batch_dim_first,
    find_model_file,
    import_library,
    thread_count,
)
from pier.serving.tensors import TensorSpec, as_bytes_array

logger = logging.getLogger(__name__)

# onnxruntime's type strings -> Open Inference Protocol datatypes
_DATATYPES = {
    "tensor(float)": "FP32",
    "tensor(float16)": "FP16",
    "tensor(double)": "FP64",
    "tensor(bfloat16)": "BF16",
    "tensor(int8)": "INT8",
    "tensor(int16)": "INT16",
    "tensor(int32)": "INT32",
    "tensor(int64)": "INT64",
    "tensor(uint8)": "UINT8",
    "tensor(uint16)": "UINT16",
    "tensor(uint32)": "UINT32",
    "tensor(uint64)": "UINT64",
    "tensor(bool)": "BOOL",
    "tensor(string)": "BYTES",
}

# numpy dtype onnxruntime expects for each fed datatype (BF16 is left to onnxruntime)
_FEED_DTYPES: dict[str, np.dtype[Any]] = {
    "FP32": np.dtype(np.float32),
    "FP16": np.dtype(np.float16),
    "FP64": np.dtype(np.float64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "BOOL": np.dtype(np.bool_),
    "BYTES": np.dtype(np.object_),
}

_OPTIMIZATION_LEVELS = {
    "disable": "ORT_DISABLE_ALL",
    "basic": "ORT_ENABLE_BASIC",
    "extended": "ORT_ENABLE_EXTENDED",
    "all": "ORT_ENABLE_ALL",
}


def _dims(shape: Any) -> tuple[int, ...]:
    # onnxruntime gives ints for fixed dims and str or None for symbolic ones.
    if shape is None:
        return (-1,)
    return tuple(d if isinstance(d, int) and d > 0 else -1 for d in shape)


def _to_str_objects(arr: Array, name: str) -> Array:
    # onnxruntime string tensors take str objects; requests carry bytes.
    out = np.empty(arr.shape, dtype=object)
    flat_in = arr.reshape(-1)
    flat_out = out.reshape(-1)
    for i, v in enumerate(flat_in):
        if isinstance(v, bytes | bytearray | memoryview):
            try:
                flat_out[i] = bytes(v).decode("utf-8")
            except UnicodeDecodeError:
                raise InvalidInput(f"input '{name}': element {i} is not valid UTF-8") from None
        else:
            flat_out[i] = str(v)
    return out


def _not_loaded(*_: Any) -> Any:
    raise InternalError("the ONNX session is not loaded")


class OnnxModel(Model):
    """An ONNX graph run by an onnxruntime InferenceSession on CPUExecutionProvider."""

    runtime = "onnx"
    platform = "onnxruntime_onnx"
    # InferenceSession.run is documented as safe to call concurrently and releases the GIL.
    thread_safe = True

    def __init__(self, path: Path, config: ModelConfig) -> None:
        super().__init__(path, config)
        self._session: Any = None
        self._bad_input_errors: tuple[type[BaseException], ...] = ()
        # (input name, datatype the graph expects, numpy dtype fed as it is: None for
        # BYTES, which is always converted, and for dtypes left to onnxruntime)
        self._feed: list[tuple[str, str, np.dtype[Any] | None]] = []
        self._fetch: list[str] = []
        self._string_outputs = False  # whether any fetched output is a string tensor
        self._run: Callable[..., Any] = _not_loaded

    def load(self) -> None:
        file = find_model_file(self.path, (".onnx",), ("model.onnx",))
        ort = import_library("onnxruntime", "onnx", file)

        params = self.config.parameters
        options = ort.SessionOptions()
        options.intra_op_num_threads = thread_count(params, "intra_op_threads", self.path)
        options.inter_op_num_threads = thread_count(params, "inter_op_threads", self.path)
        spinning = params.get("allow_spinning", False)
        if not isinstance(spinning, bool):
            raise ModelLoadError(
                f"{self.path}: parameters.allow_spinning must be true or false, got {spinning!r}"
            )
        for key in ("session.intra_op.allow_spinning", "session.inter_op.allow_spinning"):
            options.add_session_config_entry(key, "1" if spinning else "0")
        level = params.get("graph_optimization_level")
        if level is not None:
            if level not in _OPTIMIZATION_LEVELS:
                raise ModelLoadError(
                    f"{self.path}: parameters.graph_optimization_level is {level!r}; "
                    f"expected one of {', '.join(_OPTIMIZATION_LEVELS)}"
                )
            options.graph_optimization_level = getattr(
                ort.GraphOptimizationLevel, _OPTIMIZATION_LEVELS[level]
            )

        try:
            session = ort.InferenceSession(
                str(file), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:
            raise ModelLoadError(f"{file}: onnxruntime cannot load it: {exc}") from None

        self._read_metadata(session, file)
        self._session = session
        # InferenceSession.run re-checks input names and OrtValue ownership on every call
        # (~2 µs, a tenth of a small request). Feeds here are numpy arrays whose names were
        # checked against the graph, so call the binding it wraps when it is there.
        inner = getattr(session, "_sess", None)
        self._run = inner.run if inner is not None and hasattr(inner, "run") else session.run
        self._bad_input_errors = (ort.capi.onnxruntime_pybind11_state.InvalidArgument,)

    def _read_metadata(self, session: Any, file: Path) -> None:
        inputs: list[TensorSpec] = []
        for node in session.get_inputs():
            datatype = _DATATYPES.get(node.type)
            if datatype is None:
                raise ModelLoadError(
                    f"{file}: input '{node.name}' has type {node.type}, which Pier cannot feed"
                )
            inputs.append(TensorSpec(node.name, datatype, _dims(node.shape)))
        outputs: list[TensorSpec] = []
        for node in session.get_outputs():
            datatype = _DATATYPES.get(node.type)
            if datatype is None:
                logger.warning(
                    "%s: output '%s' has type %s and is not served", file, node.name, node.type
                )
                continue
            outputs.append(TensorSpec(node.name, datatype, _dims(node.shape)))
        if not outputs:
            raise ModelLoadError(f"{file}: the graph has no tensor outputs")

        # Declared tensors may refine shapes and datatypes but must exist in the graph.
        graph_inputs = {t.name: t.datatype for t in inputs}
        graph_outputs = [t.name for t in outputs]
        for kind, declared, known in (
            ("input", self.config.inputs, graph_inputs),
            ("output", self.config.outputs, graph_outputs),
        ):
            unknown = [t.name for t in declared or [] if t.name not in known]
            if unknown:
                raise ModelLoadError(
                    f"{file}: config declares {kind}s {unknown} that the graph does not have "
                    f"(graph {kind}s: {', '.join(known)})"
                )

        self.inputs, self.outputs = inputs, outputs
        self.apply_declared_metadata()
        self._feed = [
            (n, d, None if d == "BYTES" else _FEED_DTYPES.get(d)) for n, d in graph_inputs.items()
        ]
        self._fetch = [t.name for t in self.outputs]
        graph_types = {node.name: node.type for node in session.get_outputs()}
        self._string_outputs = any(graph_types[n] == "tensor(string)" for n in self._fetch)
        self.batched = bool(self.inputs) and batch_dim_first(self.inputs)

    def predict(self, inputs: Mapping[str, Array]) -> dict[str, Array]:
        session = self._session
        if session is None:
            raise InternalError(f"model at {self.path} is not loaded")
        feed: dict[str, Array] = {}
        for name, datatype, ready in self._feed:
            try:
                arr = inputs[name]
            except KeyError:
                raise InvalidInput(f"missing input '{name}'") from None
            # Validated requests already hold the graph's dtype: compare before calling.
            if ready is None or arr.dtype != ready:
                arr = self._conform(name, datatype, arr)
            feed[name] = arr
        try:
            results = self._run(self._fetch, feed, None)
        except self._bad_input_errors as exc:
            raise InvalidInput(f"onnxruntime rejected the input: {exc}") from None
        except Exception as exc:
            raise InternalError(f"onnxruntime failed: {exc}") from None
        if not self._string_outputs:  # onnxruntime returns numeric tensors as numpy arrays
            if len(results) == 1:  # the usual case, where zip() would cost 5x more
                return {self._fetch[0]: results[0]}
            return dict(zip(self._fetch, results, strict=True))
        out: dict[str, Array] = {}
        for name, value in zip(self._fetch, results, strict=True):
            arr = np.asarray(value)
            out[name] = as_bytes_array(arr) if arr.dtype.kind in "OUS" else arr
        return out

    @staticmethod
    def _conform(name: str, datatype: str, arr: Array) -> Array:
        if datatype == "BYTES":
            return _to_str_objects(arr, name) if arr.dtype.kind in "OS" else arr
        want = _FEED_DTYPES.get(datatype)
        if want is None or arr.dtype == want:
            return arr
        # Widening or same-kind casts (FP64 -> FP32, INT32 -> INT64) are harmless; others
        # would silently change values, so they are refused.
        if not np.can_cast(arr.dtype, want, casting="same_kind"):
            raise InvalidInput(f"input '{name}' is {arr.dtype}, the model expects {datatype}")
        return arr.astype(want)

    def unload(self) -> None:
        self._session = None
        self._run = _not_loaded
        self._bad_input_errors = ()
