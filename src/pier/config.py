"""Settings of the model server, built once at the entry point and passed down."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServerSettings(BaseSettings):
    """How ``pier serve`` runs; every field can also be set as ``PIER_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="PIER_", extra="forbid")

    model_repository: str = Field(
        "",
        description="Models as <model>/<version>/<files>: a folder, or a URI (s3://, gs://, "
        "oss://, hdfs://, http(s)://) whose files are fetched into the cache.",
    )
    model: str = Field(
        "",
        description="Serve one model instead of a repository: NAME=URI, where URI is a folder "
        "of numbered versions, a folder of model files, or one model file.",
    )
    model_config_file: Path | None = Field(
        None,
        description="With model: a config file (JSON or YAML) laid over the model's own config.",
    )
    cache_dir: Path = Field(
        default_factory=lambda: Path.home() / ".cache" / "pier" / "models",
        description="Where models from remote URIs are kept (shared by workers and servers).",
    )
    cache_size: int = Field(
        20 * 1024**3, gt=0, description="Bytes the cache may hold before evicting unused models."
    )
    http_host: str = Field("0.0.0.0", description="Address the HTTP server binds.")
    http_port: int = Field(8501, ge=0, le=65535, description="HTTP port for both REST protocols.")
    grpc_port: int = Field(
        8500,
        ge=0,
        le=65535,
        description="gRPC port for both protocols' services; 0 turns gRPC off.",
    )
    grpc_max_message_size: int = Field(
        64 * 1024 * 1024,
        gt=0,
        le=2**31 - 1,
        description="Largest gRPC message received or sent, in bytes.",
    )
    workers: int = Field(1, ge=1, le=64, description="Server processes sharing the HTTP port.")
    model_control_mode: Literal["poll", "explicit", "none"] = Field(
        "poll",
        description="poll: load everything and watch for new versions; none: load everything "
        "once; explicit: load only the models named by load_models.",
    )
    load_models: list[str] = Field(
        default_factory=list, description="Models to load at start in explicit mode ('*' = all)."
    )
    poll_interval: float = Field(2.0, gt=0, description="Seconds between repository scans.")
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
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["auto", "json", "text"] = "auto"
    graceful_timeout: float = Field(
        30.0, ge=0, description="Seconds to let in-flight requests finish after SIGTERM."
    )
    executor_threads: int = Field(
        0, ge=0, description="Threads that run model calls; 0 picks one per core plus two."
    )

    @model_validator(mode="after")
    def _one_source(self) -> ServerSettings:
        if bool(self.model_repository) == bool(self.model):
            raise ValueError("give either a model repository or one model (NAME=URI), not both")
        if self.model_config_file is not None and not self.model:
            raise ValueError("a model config file goes with a single model (NAME=URI)")
        return self
