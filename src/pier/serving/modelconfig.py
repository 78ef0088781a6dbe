"""The optional per-model configuration file: ``MODELS/<model>/config.yaml`` (or .yml/.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from pier.errors import ConfigError
from pier.serving.tensors import DATATYPES, TensorSpec

CONFIG_FILENAMES = ("config.yaml", "config.yml", "config.json")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TensorConfig(_Strict):
    """A declared input or output; shapes include the batch dimension (-1 = variable)."""

    name: str = Field(min_length=1)
    datatype: str
    shape: list[int]

    @field_validator("datatype")
    @classmethod
    def _known_datatype(cls, v: str) -> str:
        v = v.upper().removeprefix("TYPE_")
        v = "BYTES" if v == "STRING" else v
        if v not in DATATYPES:
            raise ValueError(f"unknown datatype '{v}'; expected one of {', '.join(DATATYPES)}")
        return v

    @field_validator("shape")
    @classmethod
    def _dims(cls, v: list[int]) -> list[int]:
        if any(d < -1 or d == 0 for d in v):
            raise ValueError("dims must be positive, or -1 for a variable size")
        return v

    def spec(self) -> TensorSpec:
        return TensorSpec(self.name, self.datatype, tuple(self.shape))


class VersionPolicy(_Strict):
    """Which versions are served: the latest N, a specific list, or all."""

    latest: int | None = Field(default=None, ge=1)
    specific: list[int] | None = None
    all: bool = False

    @model_validator(mode="after")
    def _one_kind(self) -> VersionPolicy:
        kinds = sum([self.latest is not None, self.specific is not None, self.all])
        if kinds > 1:
            raise ValueError("give only one of 'latest', 'specific' or 'all'")
        if self.specific is not None and (not self.specific or min(self.specific) < 1):
            raise ValueError("'specific' must list positive version numbers")
        return self

    def select(self, available: list[int]) -> list[int]:
        """The versions to serve out of those on disk, ascending."""
        ordered = sorted(available)
        if self.all:
            return ordered
        if self.specific is not None:
            wanted = set(self.specific)
            return [v for v in ordered if v in wanted]
        return ordered[-(self.latest or 1) :]


class DynamicBatching(_Strict):
    """Stack concurrent requests along dim 0 and run them once."""

    max_batch_size: int = Field(default=32, ge=1)
    max_queue_delay_ms: float = Field(default=2.0, ge=0)
    preferred_batch_sizes: list[int] = Field(default_factory=list)
    max_queue_size: int = Field(default=4096, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _triton_names(cls, data: Any) -> Any:
        # Accept Triton's spelling of the same settings.
        if isinstance(data, dict):
            data = dict(data)
            if "max_queue_delay_microseconds" in data:
                data["max_queue_delay_ms"] = float(data.pop("max_queue_delay_microseconds")) / 1000
            if "preferred_batch_size" in data:
                data["preferred_batch_sizes"] = data.pop("preferred_batch_size")
        return data

    @model_validator(mode="after")
    def _preferred_fit(self) -> DynamicBatching:
        bad = [b for b in self.preferred_batch_sizes if b < 1 or b > self.max_batch_size]
        if bad:
            raise ValueError(f"preferred_batch_sizes {bad} must lie in 1..max_batch_size")
        return self


class ModelConfig(_Strict):
    """Everything a model folder may say about itself; every field is optional."""

    runtime: str | None = Field(
        default=None, description="onnx, sklearn, xgboost, lightgbm, pytorch or python"
    )
    version_policy: VersionPolicy = Field(default_factory=VersionPolicy)
    version_labels: dict[str, int] = Field(default_factory=dict)
    inputs: list[TensorConfig] | None = None
    outputs: list[TensorConfig] | None = None
    dynamic_batching: DynamicBatching | None = None
    instances: int = Field(default=1, ge=1, le=64)
    execution: Literal["auto", "inline", "thread"] = "auto"
    feature_names: list[str] | None = None
    class_labels: list[str] | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)

    @field_validator("version_labels")
    @classmethod
    def _labels(cls, v: dict[str, int]) -> dict[str, int]:
        for label, version in v.items():
            if not label or label.isdigit():
                raise ValueError(f"label '{label}' must be a non-numeric name")
            if version < 1:
                raise ValueError(
                    f"label '{label}' points at version {version}; versions are positive"
                )
        return v


def _describe(exc: ValidationError, where: str) -> str:
    problems = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        problems.append(f"{loc}: {err['msg']}")
    return f"{where}: " + "; ".join(problems)


def parse_config(data: Any, where: str) -> ModelConfig:
    """Validate already-parsed config data; ``where`` names its origin in errors."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(
            f"{where}: expected a mapping at the top level, got {type(data).__name__}"
        )
    try:
        return ModelConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, where)) from None


def find_config_file(model_dir: Path) -> Path | None:
    for name in CONFIG_FILENAMES:
        candidate = model_dir / name
        if candidate.is_file():
            return candidate
    return None


def load_config(model_dir: Path) -> ModelConfig:
    """Read the model folder's config file, or return the defaults when there is none."""
    path = find_config_file(model_dir)
    if path is None:
        return ModelConfig()
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read: {exc}") from None
    return parse_config_file(raw, path.name, str(path))


def parse_config_file(raw: bytes, filename: str, where: str) -> ModelConfig:
    """Parse a config file's bytes (JSON for ``.json``, YAML otherwise) and validate it."""
    try:
        text = raw.decode("utf-8")
        data = json.loads(text) if filename.endswith(".json") else yaml.safe_load(text)
    except (UnicodeDecodeError, ValueError, yaml.YAMLError) as exc:
        raise ConfigError(f"{where}: cannot be parsed: {exc}") from None
    return parse_config(data, where)
