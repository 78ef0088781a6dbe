"""The interface every runtime implements: load, predict, unload, and tensor metadata."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from pier.errors import Unsupported
from pier.serving.modelconfig import ModelConfig
from pier.serving.tensors import TensorSpec

Array = np.ndarray[Any, Any]


class Model(ABC):
    """One version of one model, executed by one runtime.

    ``path`` is the version folder (``MODELS/<model>/<version>``). After ``load()``,
    ``inputs`` and ``outputs`` describe the tensors with their batch dimension
    included (-1 where it varies). ``predict`` takes and returns numpy arrays keyed
    by tensor name; it may be called from worker threads.
    """

    #: runtime name as written in config files (``onnx``, ``sklearn`` ...)
    runtime: ClassVar[str]
    #: platform string reported in V2 model metadata
    platform: ClassVar[str]
    #: whether ``predict`` may run on several threads at once
    thread_safe: ClassVar[bool] = True

    def __init__(self, path: Path, config: ModelConfig) -> None:
        self.path = path
        self.config = config
        self.inputs: list[TensorSpec] = []
        self.outputs: list[TensorSpec] = []
        #: True when dim 0 of every input and output is a batch dimension
        self.batched = True

    @abstractmethod
    def load(self) -> None:
        """Read the files and prepare to predict; raise ModelLoadError with the reason."""

    @abstractmethod
    def predict(self, inputs: Mapping[str, Array]) -> dict[str, Array]:
        """Run the model on validated inputs; return every output."""

    def unload(self) -> None:  # noqa: B027 - optional hook
        """Release what ``load`` acquired; the default drops nothing explicitly."""

    @property
    def feature_names(self) -> list[str] | None:
        """Feature order for TF Serving classify/regress examples, when known."""
        return self.config.feature_names

    def classify(self, x: Array) -> tuple[list[str], Array]:
        """Return (class labels, scores of shape [rows, classes]) for a 2-D feature matrix."""
        raise Unsupported(f"runtime '{self.runtime}' does not support classify")

    def regress(self, x: Array) -> Array:
        """Return one value per row of a 2-D feature matrix."""
        raise Unsupported(f"runtime '{self.runtime}' does not support regress")

    def apply_declared_metadata(self) -> None:
        """Let the config's inputs/outputs override what the runtime found."""
        if self.config.inputs is not None:
            self.inputs = [t.spec() for t in self.config.inputs]
        if self.config.outputs is not None:
            self.outputs = [t.spec() for t in self.config.outputs]
