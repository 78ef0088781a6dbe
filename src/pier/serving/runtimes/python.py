"""Python runtime: serves a model written as a Python class in the version folder's ``model.py``.

The contract
------------

``MODELS/<model>/<version>/model.py`` defines a class named ``Model`` (another name can be
chosen with ``parameters: {class: MyModel}`` in config.yaml; another file name with
``entry: serve.py``; code kept outside the model folder with ``code_path: /abs/folder``,
which is what a service spec's ``code`` (EAS ``processor_path``) becomes)::

    import numpy as np

    class Model:
        # Optional tensor metadata; declarations in config.yaml take precedence.
        inputs = [{"name": "x", "datatype": "FP32", "shape": [-1, 4]}]
        outputs = [{"name": "y", "datatype": "FP32", "shape": [-1]}]
        # Optional: True only if predict may run on several threads at once (default False).
        thread_safe = False

        def load(self, model_dir: str) -> None:          # optional
            self.weights = np.load(f"{model_dir}/weights.npy")

        def predict(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            return {"y": inputs["x"] @ self.weights}

What Pier does with it:

1. imports ``model.py`` as a module of its own (two versions never share module state);
2. creates the class with no arguments;
3. calls ``load(model_dir)`` if the class has it, with the version folder's path;
4. for every request calls ``preprocess(inputs)`` if defined (it returns the dict that
   ``predict`` receives), then ``predict(inputs)``, then ``postprocess(outputs)`` if defined
   (it receives and returns a dict of outputs);
5. calls ``unload()`` if defined when the version is unloaded.

For TF Serving's ``:classify`` and ``:regress`` the class may also define
``classify(x)``, returning ``(labels, scores)`` (a list of class names and an array of
shape ``[rows, len(labels)]``), and ``regress(x)``, returning one value per row; ``x`` is
the 2-D float feature matrix built from the request's examples. Like ``predict``, they
run in the model's instance slots, so a class that is not thread-safe runs one call at a time.

Inputs are numpy arrays keyed by tensor name; BYTES tensors are object arrays of
``bytes``. ``predict`` returns a dict of arrays, or one array, which becomes the output
named ``output`` (or the one declared output's name). Arrays of ``str`` or ``bytes`` are
sent as BYTES.

Without ``inputs``/``outputs`` metadata (in the class or in config.yaml) the model
accepts any inputs, and requests are not batched together.

Errors: an exception while importing the file, creating the class or in ``load`` fails
the load, with the exception's message. An exception in ``preprocess``, ``predict`` or
``postprocess`` fails the request as an internal error ("model raised <Type>: <message>");
to reject a request as the client's fault, raise ``pier.errors.InvalidInput``.

The version folder is not added to ``sys.path``: to use helper files next to
``model.py``, read or import them through the ``model_dir`` given to ``load``.
"""

from __future__ import annotations

import importlib.util
import inspect
import itertools
import logging
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

import numpy as np
from pydantic import ValidationError

from pier.errors import InternalError, InvalidInput, ModelLoadError, PierError
from pier.serving.model import Array, Model
from pier.serving.modelconfig import ModelConfig, TensorConfig
from pier.serving.runtimes._common import batch_dim_first
from pier.serving.tensors import TensorSpec, as_bytes_array

logger = logging.getLogger(__name__)

_FILENAME = "model.py"
_module_ids = itertools.count(1)

Hook = Callable[[Any], Any]


def _line_in(file: Path, tb: TracebackType | None) -> str:
    # Point at the deepest line of the user's file that the exception went through.
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == str(file):
            line = tb.tb_lineno
        tb = tb.tb_next
    return f" ({file.name} line {line})" if line is not None else ""


def _declared(value: Any, attribute: str, file: Path) -> list[TensorSpec] | None:
    if value is None:
        return None
    if not isinstance(value, list | tuple):
        raise ModelLoadError(
            f"{file}: Model.{attribute} must be a list of {{name, datatype, shape}} dicts"
        )
    specs: list[TensorSpec] = []
    for i, item in enumerate(value):
        try:
            specs.append(TensorConfig.model_validate(item).spec())
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'entry'}: {e['msg']}" for e in exc.errors()
            )
            raise ModelLoadError(f"{file}: Model.{attribute}[{i}] is invalid: {problems}") from None
    return specs


class PythonModel(Model):
    """A user-written model class loaded from ``model.py``."""

    runtime = "python"
    platform = "python"
    # User code may keep per-call state; a model opts in with ``thread_safe = True``,
    # which load() copies onto the instance.
    thread_safe = False

    def __init__(self, path: Path, config: ModelConfig) -> None:
        super().__init__(path, config)
        self._module_name: str | None = None
        self._user: Any = None
        self._preprocess: Hook | None = None
        self._predict: Hook | None = None
        self._postprocess: Hook | None = None
        self._classify: Hook | None = None
        self._regress: Hook | None = None
        self._bare_name = "output"

    def _code_file(self) -> Path:
        """``model.py`` in the version folder, or the code the config points at."""
        params = self.config.parameters
        entry = params.get("entry") or _FILENAME
        if not isinstance(entry, str) or "/" in entry or not entry.endswith(".py"):
            raise ModelLoadError(
                f"{self.path}: parameters.entry must be a .py file name, got {entry!r}"
            )
        code = params.get("code_path")
        if code is None:
            return self.path / entry
        if not isinstance(code, str) or ("://" in code and not code.startswith("file://")):
            raise ModelLoadError(
                f"{self.path}: parameters.code_path {code!r} must be a local folder or file "
                "(code from URIs is not fetched yet: put it in the model folder as model.py)"
            )
        where = Path(code.removeprefix("file://"))
        return where if where.is_file() else where / entry

    def load(self) -> None:
        file = self._code_file()
        if not file.is_file():
            raise ModelLoadError(f"{self.path}: no {file.name} found at {file.parent}")
        class_name = self.config.parameters.get("class", "Model")
        if not isinstance(class_name, str) or not class_name.isidentifier():
            raise ModelLoadError(
                f"{self.path}: parameters.class must be a class name, got {class_name!r}"
            )

        module = self._import(file)
        try:
            cls = getattr(module, class_name, None)
            if not isinstance(cls, type):
                raise ModelLoadError(f"{file}: defines no class named '{class_name}'")
            user = self._construct(cls, file)
            predict = getattr(user, "predict", None)
            if not callable(predict):
                raise ModelLoadError(f"{file}: class '{class_name}' has no predict method")
            if inspect.iscoroutinefunction(predict):
                raise ModelLoadError(f"{file}: predict must be a plain function, not async def")
            self.inputs = _declared(getattr(user, "inputs", None), "inputs", file) or []
            self.outputs = _declared(getattr(user, "outputs", None), "outputs", file) or []
        except ModelLoadError:
            self._forget_module()
            raise

        self.apply_declared_metadata()
        self.batched = bool(self.inputs) and batch_dim_first(self.inputs, self.outputs)
        self._bare_name = self.outputs[0].name if len(self.outputs) == 1 else "output"
        # The instance attribute shadows the class default for this one model; setattr
        # because Model declares thread_safe as a class variable.
        setattr(self, "thread_safe", bool(getattr(user, "thread_safe", False)))  # noqa: B010
        self._user = user
        self._predict = predict
        self._preprocess = self._hook(user, "preprocess")
        self._postprocess = self._hook(user, "postprocess")
        self._classify = self._hook(user, "classify")
        self._regress = self._hook(user, "regress")

    def _import(self, file: Path) -> ModuleType:
        name = f"_pier_user_model_{next(_module_ids)}"
        spec = importlib.util.spec_from_file_location(name, file)
        if spec is None or spec.loader is None:
            raise ModelLoadError(f"{file}: cannot be imported")
        module = importlib.util.module_from_spec(spec)
        # Registered so that dataclasses, pickle and typing inside model.py can find it.
        sys.modules[name] = module
        self._module_name = name
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            self._forget_module()
            where = _line_in(file, exc.__traceback__)
            raise ModelLoadError(
                f"{file}: import failed: {type(exc).__name__}: {exc}{where}"
            ) from None
        return module

    def _construct(self, cls: type, file: Path) -> Any:
        step = f"{cls.__name__}()"
        try:
            user = cls()
            load = getattr(user, "load", None)
            if callable(load):
                step = "load()"
                load(str(self.path))
        except Exception as exc:
            where = _line_in(file, exc.__traceback__)
            raise ModelLoadError(
                f"{file}: {step} raised {type(exc).__name__}: {exc}{where}"
            ) from None
        return user

    @staticmethod
    def _hook(user: Any, name: str) -> Hook | None:
        fn = getattr(user, name, None)
        return fn if callable(fn) else None

    def _forget_module(self) -> None:
        if self._module_name is not None:
            sys.modules.pop(self._module_name, None)
            self._module_name = None

    def _outputs(self, value: Any, step: str) -> dict[str, Array]:
        if value is None:
            raise InternalError(f"model {step} returned None")
        items = value.items() if isinstance(value, Mapping) else [(self._bare_name, value)]
        out: dict[str, Array] = {}
        for name, data in items:
            if not isinstance(name, str):
                raise InternalError(
                    f"model {step} returned an output named {name!r}; names are strings"
                )
            arr = np.asarray(data)
            if arr.dtype.kind in "OUS":
                try:
                    arr = as_bytes_array(arr)
                except InvalidInput as exc:
                    raise InternalError(f"model {step} output '{name}': {exc.message}") from None
            out[name] = arr
        return out

    def predict(self, inputs: Mapping[str, Array]) -> dict[str, Array]:
        predict = self._predict
        if predict is None:
            raise InternalError(f"model at {self.path} is not loaded")
        try:
            data: Any = dict(inputs)
            if self._preprocess is not None:
                data = self._preprocess(data)
                if not isinstance(data, Mapping):
                    raise InternalError(
                        f"model preprocess returned {type(data).__name__}, not a dict"
                    )
            outputs = self._outputs(predict(data), "predict")
            if self._postprocess is not None:
                outputs = self._outputs(self._postprocess(outputs), "postprocess")
        except PierError:
            raise
        except Exception as exc:
            # ValueError and TypeError land here too: from outside we cannot tell whether
            # the input or the model's code is at fault.
            raise InternalError(f"model raised {type(exc).__name__}: {exc}") from exc
        return outputs

    def classify(self, x: Array) -> tuple[list[str], Array]:
        if self._classify is None:
            return super().classify(x)
        result = self._user_call(self._classify, x, "classify")
        try:
            labels, scores = result
            labels = [str(label) for label in labels]
            scores = np.asarray(scores, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise InternalError(
                f"model classify must return (labels, scores), not {type(result).__name__}: {exc}"
            ) from None
        if scores.shape != (len(x), len(labels)):
            raise InternalError(
                f"model classify returned scores of shape {list(scores.shape)} for "
                f"{len(x)} row(s) and {len(labels)} label(s)"
            )
        return labels, scores

    def regress(self, x: Array) -> Array:
        if self._regress is None:
            return super().regress(x)
        result = self._user_call(self._regress, x, "regress")
        try:
            values = np.asarray(result, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError) as exc:
            raise InternalError(f"model regress must return numbers: {exc}") from None
        if len(values) != len(x):
            raise InternalError(f"model regress returned {len(values)} value(s) for {len(x)} row(s)")
        return values

    @staticmethod
    def _user_call(hook: Hook, x: Array, step: str) -> Any:
        try:
            return hook(x)
        except PierError:
            raise
        except Exception as exc:
            raise InternalError(f"model {step} raised {type(exc).__name__}: {exc}") from exc

    def unload(self) -> None:
        user, self._user = self._user, None
        unload = getattr(user, "unload", None)
        if callable(unload):
            try:
                unload()
            except Exception:
                logger.exception(
                    "%s: unload() raised; the model is dropped anyway", self.path / _FILENAME
                )
        self._predict = self._preprocess = self._postprocess = None
        self._classify = self._regress = None
        self._forget_module()
