"""The service spec in Pier's own form: ``ServiceSpec`` and the models it nests."""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterable
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from pier.spec.units import parse_memory_mib

#: Processors a replica can run today.
PROCESSORS = ("onnx", "sklearn", "xgboost", "lightgbm", "pytorch", "python")
#: Processors Pier knows about but cannot run yet; naming one is a clear error, not a typo.
PLANNED_PROCESSORS = ("tensorflow", "openvino", "tfserving", "triton", "pmml")
#: URI schemes a model location may use; anything without ``scheme://`` is a local path.
MODEL_SCHEMES = ("file", "s3", "gs", "oss", "hdfs", "http", "https")

# fullmatch, never `$`: `$` also matches before a trailing newline, and "a\n" is no name.
_NAME = re.compile(r"[a-z][a-z0-9_-]{0,62}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*)://")

# Bounds on what a spec may ask for: every number, count, length and depth that comes from
# outside has one, so that nothing downstream (store, cgroups, the replica) meets a value it
# cannot hold.
MIN_CPU = 0.01
MAX_CPU = 1024.0
MAX_GPU = 64
MAX_REPLICAS = 64
MAX_BATCH_SIZE = 65_536
MAX_DELAY_MS = 60_000.0
MAX_QUEUE_SIZE = 1_000_000
MAX_PREFERRED_SIZES = 64
MAX_VERSIONS = 1_000
MAX_VERSION_NUMBER = 2**31 - 1
MAX_LOCATION_CHARS = 4_096
MAX_ENV_VARS = 256
MAX_ENV_NAME_CHARS = 256
MAX_ENV_VALUE_CHARS = 32 * 1024
MAX_PARAMETER_DEPTH = 32
MAX_PARAMETER_ITEMS = 10_000
#: Integers a parameter may hold: what the store's JSON (and most consumers) can keep.
INT64 = (-(2**63), 2**63 - 1)


def shown(value: str, limit: int = 80) -> str:
    """A user's string quoted for a message: escapes visible, cut to ``limit`` characters."""
    text = repr(value[:limit])
    return text + "…" if len(value) > limit else text


def suggest(word: str, choices: Iterable[str]) -> str:
    """A "did you mean" hint naming the closest choice, or "" when none is close."""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"; did you mean '{match[0]}'?" if match else ""


def uri_scheme(uri: str) -> str | None:
    """The lower-cased scheme of ``scheme://…``, or None for a plain local path."""
    match = _SCHEME.match(uri)  # a prefix match: the rest of the URI follows
    return match.group(1).lower() if match else None


def _check_location(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    if len(value) > MAX_LOCATION_CHARS:
        raise ValueError(f"must be at most {MAX_LOCATION_CHARS} characters")
    if any(c in value for c in "\x00\n\r"):
        raise ValueError("must not hold NUL or line breaks")
    scheme = uri_scheme(value)
    if scheme is not None and scheme not in MODEL_SCHEMES:
        raise ValueError(
            f"unsupported scheme '{scheme}://'; use a local path or one of "
            + ", ".join(f"{s}://" for s in MODEL_SCHEMES)
        )
    return value


MemoryMiB = Annotated[
    int,
    BeforeValidator(parse_memory_mib),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "exclusiveMinimum": 0},
                {
                    "type": "string",
                    "pattern": r"^\s*(\d+(\.\d+)?|\.\d+)\s*([KkMmGgTt][Ii]?)?[Bb]?\s*$",
                },
            ]
        }
    ),
]


def _check_env_name(name: str) -> str:
    if len(name) > MAX_ENV_NAME_CHARS:
        raise ValueError(f"names are at most {MAX_ENV_NAME_CHARS} characters")
    if not _ENV_NAME.fullmatch(name):
        raise ValueError(
            "not a valid variable name: use letters, digits and '_', not starting with a digit"
        )
    if name.upper().startswith("PIER_"):
        raise ValueError("names starting with PIER_ are reserved for Pier")
    return name


def _check_env_value(value: str) -> str:
    if len(value) > MAX_ENV_VALUE_CHARS:
        raise ValueError(f"values are at most {MAX_ENV_VALUE_CHARS} characters")
    if "\x00" in value:
        raise ValueError("values must not hold NUL characters")
    return value


EnvName = Annotated[str, AfterValidator(_check_env_name)]
EnvValue = Annotated[str, AfterValidator(_check_env_value)]


def _check_parameters(value: dict[str, Any]) -> dict[str, Any]:
    """Parameters are free-form, but bounded: depth, item count, finite numbers, int64."""
    items = 0
    stack: list[tuple[Any, int, str]] = [(value, 1, "")]
    while stack:
        node, depth, where = stack.pop()
        at = f" (at {where})" if where else ""
        if isinstance(node, dict | list):
            if depth > MAX_PARAMETER_DEPTH:
                raise ValueError(f"nested deeper than {MAX_PARAMETER_DEPTH} levels{at}")
            items += len(node)
            if items > MAX_PARAMETER_ITEMS:
                raise ValueError(f"more than {MAX_PARAMETER_ITEMS} values in all")
            pairs = node.items() if isinstance(node, dict) else enumerate(node)
            for key, child in pairs:
                label = f"[{key}]" if isinstance(key, int) else (f".{key}" if where else str(key))
                stack.append((child, depth + 1, where + label))
        elif isinstance(node, bool) or node is None or isinstance(node, str):
            continue
        elif isinstance(node, int):
            if not INT64[0] <= node <= INT64[1]:
                raise ValueError(f"integers must fit in 64 bits{at}")
        elif isinstance(node, float):
            if not math.isfinite(node):
                raise ValueError(f"numbers must be finite{at}")
        else:
            raise ValueError(f"values must be JSON values, not {type(node).__name__}{at}")
    return value


Parameters = Annotated[dict[str, Any], AfterValidator(_check_parameters)]


class _Spec(BaseModel):
    # strict: a YAML "true" or "4" is a mistake in a count, not something to coerce.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class Resources(_Spec):
    """What each replica asks for; None leaves the amount unbounded."""

    cpu: float | None = Field(
        default=None,
        gt=0,
        le=MAX_CPU,
        description="CPU cores per replica, e.g. 0.5 or 4 (0.01 to 1024).",
    )
    memory: MemoryMiB | None = Field(
        default=None,
        description="Memory per replica in MiB; strings like '512Mi', '2Gi' or '1G' are converted.",
    )
    gpu: int = Field(default=0, ge=0, le=MAX_GPU, description="GPUs per replica.")

    @field_validator("cpu")
    @classmethod
    def _cpu_enforceable(cls, v: float | None) -> float | None:
        # The kernel's CFS quota has a 1 ms floor per 100 ms period: less cannot be enforced,
        # and a quota that rounds to 0 would silently mean "no limit".
        if v is not None and v < MIN_CPU:
            raise ValueError(f"must be at least {MIN_CPU} (10 millicores)")
        return v


class Batching(_Spec):
    """Dynamic batching: concurrent requests are stacked along the first dimension and run once."""

    max_batch_size: int = Field(
        default=32, ge=1, le=MAX_BATCH_SIZE, description="Largest batch the model is given."
    )
    max_delay_ms: float = Field(
        default=2.0,
        ge=0,
        le=MAX_DELAY_MS,
        description="How long the first request of a batch may wait for others, in milliseconds.",
    )
    preferred_batch_sizes: list[int] = Field(
        default_factory=list,
        max_length=MAX_PREFERRED_SIZES,
        description="Batch sizes to run as soon as they are reached, each in 1..max_batch_size.",
    )
    max_queue_size: int = Field(
        default=4096,
        ge=1,
        le=MAX_QUEUE_SIZE,
        description="Requests that may wait; more are refused.",
    )

    @model_validator(mode="after")
    def _preferred_fit(self) -> Batching:
        bad = [b for b in self.preferred_batch_sizes if b < 1 or b > self.max_batch_size]
        if bad:
            raise ValueError(
                f"preferred_batch_sizes {bad} must lie in 1..max_batch_size ({self.max_batch_size})"
            )
        return self


class VersionPolicySpec(_Spec):
    """Which numbered versions of the model are served; give exactly one kind."""

    latest: int | None = Field(
        default=None, ge=1, le=MAX_VERSIONS, description="Serve the N highest versions."
    )
    specific: list[int] | None = Field(
        default=None, max_length=MAX_VERSIONS, description="Serve exactly these version numbers."
    )
    all: bool | None = Field(default=None, description="Serve every version found (true).")

    @model_validator(mode="after")
    def _one_kind(self) -> VersionPolicySpec:
        kinds = sum([self.latest is not None, self.specific is not None, self.all is not None])
        if kinds != 1:
            raise ValueError("give exactly one of 'latest', 'specific' or 'all'")
        if self.all is False:
            raise ValueError(
                "'all' can only be true; to serve fewer versions use 'latest' or 'specific'"
            )
        if self.specific is not None and (
            not self.specific or min(self.specific) < 1 or max(self.specific) > MAX_VERSION_NUMBER
        ):
            raise ValueError(
                f"'specific' must list positive version numbers up to {MAX_VERSION_NUMBER}"
            )
        return self


class PythonCode(_Spec):
    """Where a ``python`` processor's code lives when it is not inside the model folder."""

    path: str = Field(
        description="Folder, archive or file holding the code: a local path or a URI."
    )
    entry: str | None = Field(
        default=None,
        max_length=255,
        description="The Python file to load from that folder (default model.py).",
    )

    @field_validator("path")
    @classmethod
    def _path(cls, v: str) -> str:
        return _check_location(v)


class ServiceSpec(_Spec):
    """A named inference service: which model, how it runs, and how many replicas serve it."""

    name: str = Field(
        description="Service name, also the model name in URLs (/v2/models/NAME/infer): a lowercase "
        "letter, then lowercase letters, digits, '-' or '_', at most 63 characters."
    )
    model: str = Field(
        description="The model: a local path (relative paths are taken from the spec file's folder) or a "
        "file://, s3://, gs://, oss://, hdfs://, http(s):// URI of a versioned folder, a folder or a file."
    )
    processor: str | None = Field(
        default=None,
        description="The runtime: onnx, sklearn, xgboost, lightgbm, pytorch or python; null = inferred from the files.",
    )
    code: PythonCode | None = Field(
        default=None, description="For the python processor: code kept apart from the model files."
    )
    parameters: Parameters = Field(
        default_factory=dict, description="Settings passed to the processor."
    )
    replicas: int = Field(
        default=1,
        ge=0,
        le=MAX_REPLICAS,
        description="How many replicas serve the model (0 = stopped).",
    )
    resources: Resources = Field(
        default_factory=Resources, description="CPU, memory and GPUs per replica."
    )
    batching: Batching | None = Field(
        default=None, description="Dynamic batching; null = each request runs alone."
    )
    env: dict[EnvName, EnvValue] = Field(
        default_factory=dict,
        max_length=MAX_ENV_VARS,
        description="Environment variables for the replicas; PIER_* names are reserved.",
    )
    version_policy: VersionPolicySpec | None = Field(
        default=None, description="Which model versions are served; null = the latest one."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.fullmatch(v):
            raise ValueError(
                f"{shown(v)} is not a valid name: start with a lowercase letter, then use lowercase "
                "letters, digits, '-' or '_', at most 63 characters"
            )
        return v

    @field_validator("model")
    @classmethod
    def _model(cls, v: str) -> str:
        return _check_location(v)

    @field_validator("processor")
    @classmethod
    def _processor(cls, v: str | None) -> str | None:
        if v is None:
            return None
        name = v.strip().lower()
        if name in PROCESSORS:
            return name
        if name in PLANNED_PROCESSORS:
            raise ValueError(
                f"Pier cannot run '{name}' models yet; supported processors: {', '.join(PROCESSORS)}"
            )
        raise ValueError(f"unknown processor {shown(v)}; expected one of {', '.join(PROCESSORS)}")

    @field_validator("code")
    @classmethod
    def _code_needs_python(cls, v: PythonCode | None, info: ValidationInfo) -> PythonCode | None:
        if v is not None and info.data.get("processor", "python") != "python":
            raise ValueError("only the python processor runs separate code; set processor: python")
        return v
