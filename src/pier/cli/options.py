"""The options the platform commands share: where the API is, how to print, whether to wait."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def connection_options(f: F) -> F:
    """--home, --api and --token, each with its environment variable."""
    f = click.option(
        "--token",
        envvar="PIER_TOKEN",
        default=None,
        help="Admin token [env PIER_TOKEN; default: the home folder's token file].",
    )(f)
    f = click.option(
        "--api",
        envvar="PIER_API",
        default=None,
        metavar="URL",
        help="API URL [env PIER_API; default: the running `pier up` of --home].",
    )(f)
    return click.option(
        "--home",
        envvar="PIER_HOME",
        default=None,
        type=click.Path(file_okay=False, path_type=Path),
        help="Pier home folder [env PIER_HOME; default ~/.pier].",
    )(f)


def output_option(f: F) -> F:
    """-o/--output table|json."""
    return click.option(
        "-o",
        "--output",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help="json: the API's document, machine-readable.",
    )(f)


def wait_options(f: F) -> F:
    """--wait/--no-wait and --timeout."""
    f = click.option(
        "--timeout",
        type=click.FloatRange(min=0),
        default=300.0,
        show_default=True,
        help="Seconds --wait waits for the replicas.",
    )(f)
    return click.option(
        "--wait/--no-wait",
        default=True,
        show_default=True,
        help="Wait until the desired replicas are ready.",
    )(f)
