"""``pier serve``: one model server over a model repository (or one model), no control plane."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from pydantic import ValidationError


@click.command()
@click.option(
    "--model-repository",
    "model_repository",
    default="",
    help="Models laid out as <model>/<version>/<files>: a folder or a URI "
    "(s3://bucket/models, gs://, oss://, hdfs://, http(s)://). S3 endpoint, region and "
    "credentials come from the AWS_* environment variables or the AWS profile.",
)
@click.option(
    "--model",
    "model",
    default="",
    metavar="NAME=URI",
    help="Serve one model instead of a repository, under NAME: URI is a folder of numbered "
    "versions, a folder of model files, or one model file (local path or URI).",
)
@click.option(
    "--model-config",
    "model_config_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="With --model: a config file (JSON or YAML) laid over the model's own config.",
)
@click.option(
    "--cache-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where models from remote URIs are cached [default: ~/.cache/pier/models].",
)
@click.option(
    "--cache-size",
    default=20 * 1024**3,
    show_default=True,
    type=int,
    help="Bytes the cache may hold before it evicts models no server uses.",
)
@click.option(
    "--http-host",
    default="0.0.0.0",
    show_default=True,
    help="Address to listen on (HTTP and gRPC).",
)
@click.option(
    "--http-port",
    default=8501,
    show_default=True,
    type=int,
    help="Port for TF Serving REST and Open Inference Protocol REST.",
)
@click.option(
    "--grpc-port",
    default=8500,
    show_default=True,
    type=int,
    help="Port for gRPC: the Open Inference Protocol and TF Serving services; 0 = off.",
)
@click.option(
    "--grpc-max-message-size",
    default=64 * 1024 * 1024,
    show_default=True,
    type=int,
    help="Largest gRPC message received or sent, in bytes (larger: RESOURCE_EXHAUSTED).",
)
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=int,
    help="Server processes sharing the port (each loads its own models).",
)
@click.option(
    "--model-control-mode",
    type=click.Choice(["poll", "explicit", "none"]),
    default="poll",
    show_default=True,
    help="poll: load all and watch for new versions; none: load all once; "
    "explicit: load only --load-model models (and what the repository API loads).",
)
@click.option(
    "--load-model",
    "load_models",
    multiple=True,
    help="In explicit mode, a model to load at start ('*' for all). Repeatable.",
)
@click.option(
    "--poll-interval",
    default=2.0,
    show_default=True,
    type=float,
    help="Seconds between repository scans in poll mode.",
)
@click.option(
    "--max-request-size",
    default=64 * 1024 * 1024,
    show_default=True,
    type=int,
    help="Largest request body, in bytes.",
)
@click.option(
    "--max-elements",
    default=2**24,
    show_default=True,
    type=int,
    help="Most elements one input tensor may hold, in any protocol.",
)
@click.option(
    "--access-log/--no-access-log",
    default=True,
    show_default=True,
    help="One JSON line per request on stdout.",
)
@click.option(
    "--strict-readiness/--no-strict-readiness",
    default=True,
    show_default=True,
    help="Report ready only when every model has an available version.",
)
@click.option(
    "--log-level",
    type=click.Choice(["debug", "info", "warning", "error"]),
    default="info",
    show_default=True,
)
@click.option(
    "--log-format",
    type=click.Choice(["auto", "json", "text"]),
    default="auto",
    show_default=True,
    help="auto: text on a terminal, JSON lines otherwise.",
)
@click.option(
    "--graceful-timeout",
    default=30.0,
    show_default=True,
    type=float,
    help="Seconds to let in-flight requests finish after SIGTERM.",
)
@click.option(
    "--executor-threads",
    default=0,
    show_default=True,
    type=int,
    help="Threads running model calls; 0 = cores + 2.",
)
def serve(**options: object) -> None:
    """Serve every model in a model repository (or one model) over HTTP and gRPC."""
    from pier.config import ServerSettings
    from pier.serving.server import serve as run

    options["load_models"] = list(options["load_models"])  # type: ignore[call-overload]
    if options["cache_dir"] is None:
        del options["cache_dir"]
    try:
        settings = ServerSettings(**options)  # type: ignore[arg-type]
    except ValidationError as exc:
        for err in exc.errors():
            if not err["loc"]:
                click.echo(f"error: {err['msg'].removeprefix('Value error, ')}", err=True)
                continue
            field = "--" + "-".join(str(p) for p in err["loc"]).replace("_", "-")
            click.echo(f"error: {field}: {err['msg']}", err=True)
        sys.exit(2)
    sys.exit(run(settings))
