"""Settings of the model server, built once at the entry point and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class ServerSettings(BaseSettings):
    """How ``pier serve`` runs.

    Each field is an option of ``pier serve`` (generated from the field: name, type, help,
    default) and a ``PIER_<FIELD>`` variable; the command line wins over the environment,
    which wins over the default shown here.
    """

    model_config = SettingsConfigDict(env_prefix="PIER_", extra="forbid")

    model_repository: str = Field(
        "",
        description="Models laid out as <model>/<version>/<files>: a folder or a URI "
        "(s3://bucket/models, gs://, oss://, hdfs://, http(s)://) whose files are fetched into "
        "the cache. S3 endpoint, region and credentials come from the AWS_* environment "
        "variables or the AWS profile.",
    )
    model: str = Field(
        "",
        description="Serve one model instead of a repository, under NAME: URI is a folder of "
        "numbered versions, a folder of model files, or one model file (local path or URI).",
    )
    model_config_file: Path | None = Field(
        None,
        description="With --model: a config file (JSON or YAML) laid over the model's own config.",
    )
    cache_dir: Path = Field(
        default_factory=lambda: Path.home() / ".cache" / "pier" / "models",
        description="Where models from remote URIs are cached (shared by workers and servers).",
    )
    cache_size: int = Field(
        20 * 1024**3,
        gt=0,
        description="Bytes the cache may hold before it evicts models no server uses.",
    )
    http_host: str = Field("0.0.0.0", description="Address to listen on (HTTP and gRPC).")
    http_port: int = Field(
        8501,
        ge=0,
        le=65535,
        description="Port for TF Serving REST and Open Inference Protocol REST.",
    )
    grpc_port: int = Field(
        8500,
        ge=0,
        le=65535,
        description="Port for gRPC: the Open Inference Protocol and TF Serving services; "
        "0 turns gRPC off.",
    )
    grpc_max_message_size: int = Field(
        64 * 1024 * 1024,
        gt=0,
        le=2**31 - 1,
        description="Largest gRPC message received or sent, in bytes (larger: RESOURCE_EXHAUSTED).",
    )
    workers: int = Field(
        1, ge=1, le=64, description="Server processes sharing the ports (each loads its models)."
    )
    model_control_mode: Literal["poll", "explicit", "none"] = Field(
        "poll",
        description="poll: load everything and watch for new versions; none: load everything "
        "once; explicit: load only the models named by --load-model (and what the repository "
        "API loads).",
    )
    # NoDecode: the variable is a comma-separated list (PIER_LOAD_MODELS=a,b), not JSON.
    load_models: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Models to load at start in explicit mode ('*' = all); repeat the option, "
        "or separate names with commas.",
    )
    poll_interval: float = Field(
        2.0, gt=0, description="Seconds between repository scans in poll mode."
    )
    max_request_size: int = Field(
        64 * 1024 * 1024, gt=0, description="Largest request body accepted, in bytes."
    )
    max_elements: int = Field(
        2**24,
        gt=0,
        le=2**40,
        description="Most elements one input tensor may hold, in every protocol and form; "
        "checked on the shape before anything is allocated (HTTP 413, gRPC "
        "RESOURCE_EXHAUSTED). The default, 2**24 (16.7M), holds a batch of 100 224x224 RGB "
        "images (15M; ResNet-50 at batch 64 is 9.6M) and is as many FP32 values as the "
        "default 64 MiB body carries, so one value that 'fills the shape' or an empty "
        "dimension next to a huge one cannot make a tiny request allocate gigabytes.",
    )
    strict_readiness: bool = Field(
        True, description="Ready only when every model has an available version."
    )
    access_log: bool = Field(True, description="Write one JSON line per request to stdout.")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="Least severe log records written."
    )
    log_format: Literal["auto", "json", "text"] = Field(
        "auto", description="auto: text on a terminal, JSON lines otherwise."
    )
    graceful_timeout: float = Field(
        30.0, ge=0, description="Seconds to let in-flight requests finish after SIGTERM."
    )
    executor_threads: int = Field(
        0, ge=0, description="Threads that run model calls; 0 picks one per core plus two."
    )

    @field_validator("load_models", mode="before")
    @classmethod
    def _split_names(cls, value: object) -> object:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @model_validator(mode="after")
    def _one_source(self) -> ServerSettings:
        if self.model_repository and self.model:
            raise ValueError("give either a model repository or one model (NAME=URI), not both")
        if not self.model_repository and not self.model:
            raise ValueError("nothing to serve: give a model repository or one model (NAME=URI)")
        if self.model_config_file is not None and not self.model:
            raise ValueError("a model config file goes with a single model (NAME=URI)")
        return self
