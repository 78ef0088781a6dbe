"""PyTorch runtime: serves TorchScript files (``.pt``, ``.pth``, ``.torchscript``) on the CPU.

Only files written by ``torch.jit.save`` can be served; a ``state_dict`` or a pickled
``nn.Module`` saved with ``torch.save`` cannot, because it needs the user's Python classes.

A TorchScript file does not record the dtypes or shapes of its tensors, so declare the
inputs and outputs in the model's config.yaml::

    inputs:
      - {name: pixels, datatype: FP32, shape: [-1, 3, 224, 224]}
    outputs:
      - {name: logits, datatype: FP32, shape: [-1, 1000]}

Declared inputs are passed to ``forward`` positionally, in the order they are declared.
Without declarations the model reports no tensor metadata, requests are not validated
against any, and inputs are matched to ``forward``'s arguments by position name
(``input__0``, ``input__1`` ...) or by the argument's own name. Outputs are named after
the declarations, or ``output__0``, ``output__1`` ... when ``forward`` returns a tensor or
a tuple/list of tensors; a returned dict keeps its keys.

Parameters (``parameters:`` in config.yaml):

- ``num_threads``: intra-op threads (``torch.set_num_threads``). This setting is global
  to the process, so the last model loaded with it wins.
"""

from __future__ import annotations

from collections.abc import Mapping
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

_SUFFIXES = (".pt", ".pth", ".torchscript")
_PREFERRED = ("model.pt", "model.pth", "model.torchscript")


def _last_line(exc: BaseException) -> str:
    # TorchScript errors open with a generic banner and end with the actual reason.
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[-1] if lines else type(exc).__name__


class _Argument:
    """One positional argument of ``forward`` and the input names that may fill it."""

    __slots__ = ("has_default", "keys", "label")

    def __init__(self, keys: tuple[str, ...], has_default: bool) -> None:
        self.keys = keys
        self.label = keys[0]
        self.has_default = has_default


class TorchScriptModel(Model):
    """A TorchScript module run in inference mode on the CPU."""

    runtime = "pytorch"
    platform = "pytorch_libtorch"
    # A scripted module in eval mode only reads its parameters; the interpreter runs
    # without the GIL.
    thread_safe = True

    def __init__(self, path: Path, config: ModelConfig) -> None:
        super().__init__(path, config)
        self._torch: Any = None
        self._module: Any = None
        self._arguments: list[_Argument] = []
        self._output_names: list[str] | None = None

    def load(self) -> None:
        file = find_model_file(self.path, _SUFFIXES, _PREFERRED)
        threads = thread_count(self.config.parameters, "num_threads", self.path)
        torch = import_library("torch", "pytorch", file)
        if threads:
            torch.set_num_threads(threads)
        try:
            module = torch.jit.load(str(file), map_location="cpu")
        except Exception as exc:
            raise ModelLoadError(
                f"{file}: torch.jit.load failed: {_last_line(exc)} "
                "(only TorchScript files written by torch.jit.save can be served)"
            ) from None
        module.eval()

        self._arguments = self._forward_arguments(module)
        self.inputs, self.outputs = [], []
        self.apply_declared_metadata()
        # Batching needs to know the inputs' dims, so it is off until they are declared.
        self.batched = self.config.inputs is not None and batch_dim_first(self.inputs, self.outputs)
        self._output_names = None if self.config.outputs is None else [t.name for t in self.outputs]
        self._torch, self._module = torch, module

    def _forward_arguments(self, module: Any) -> list[_Argument]:
        try:
            schema_args = list(module.forward.schema.arguments)[1:]  # drop self
        except Exception:  # no usable schema: take inputs in the order they arrive
            schema_args = []
        declared = self.config.inputs
        if declared is not None:
            if schema_args and len(declared) > len(schema_args):
                raise ModelLoadError(
                    f"{self.path}: config declares {len(declared)} inputs, forward takes {len(schema_args)}"
                )
            return [_Argument((t.name,), False) for t in declared]
        return [
            _Argument((f"input__{i}", str(a.name)), bool(a.has_default_value()))
            for i, a in enumerate(schema_args)
        ]

    def _gather(self, inputs: Mapping[str, Array]) -> list[Array]:
        if not self._arguments:
            return list(inputs.values())
        args: list[Array] = []
        for arg in self._arguments:
            value = next((inputs[k] for k in arg.keys if k in inputs), None)
            if value is None:
                if arg.has_default:
                    break  # later arguments keep their defaults too
                raise InvalidInput(f"missing input '{arg.label}'")
            args.append(value)
        return args

    def _to_tensor(self, arr: Array) -> Any:
        torch = self._torch
        if arr.dtype.kind in "OSU":
            raise InvalidInput("BYTES inputs cannot be passed to a TorchScript model")
        if arr.dtype.name == "bfloat16":
            return torch.from_numpy(np.ascontiguousarray(arr).view(np.int16)).view(torch.bfloat16)
        if not arr.flags.writeable:
            # torch.from_numpy shares memory and warns on read-only arrays (views of the
            # request body); a copy keeps the request untouched.
            arr = arr.copy()
        return torch.from_numpy(arr)

    def _to_numpy(self, value: Any) -> Array:
        torch = self._torch
        if isinstance(value, torch.Tensor):
            tensor = value.detach().cpu()
            if tensor.dtype == torch.bfloat16:
                import ml_dtypes

                return np.asarray(tensor.view(torch.int16).numpy().view(ml_dtypes.bfloat16))
            return np.asarray(tensor.numpy())
        return np.asarray(value)

    def _name_outputs(self, result: Any) -> dict[str, Array]:
        if isinstance(result, dict):
            return {str(k): self._to_numpy(v) for k, v in result.items()}
        values = list(result) if isinstance(result, tuple | list) else [result]
        names = self._output_names
        if names is None:
            names = [f"output__{i}" for i in range(len(values))]
        elif len(names) != len(values):
            raise InternalError(
                f"forward returned {len(values)} outputs, config.yaml declares {len(names)}"
            )
        return {n: self._to_numpy(v) for n, v in zip(names, values, strict=True)}

    def predict(self, inputs: Mapping[str, Array]) -> dict[str, Array]:
        module, torch = self._module, self._torch
        if module is None:
            raise InternalError(f"model at {self.path} is not loaded")
        tensors = [self._to_tensor(a) for a in self._gather(inputs)]
        try:
            with torch.inference_mode():
                result = module(*tensors)
        except Exception as exc:
            raise InternalError(f"TorchScript forward failed: {_last_line(exc)}") from None
        return self._name_outputs(result)

    def unload(self) -> None:
        self._module = None
        self._torch = None
