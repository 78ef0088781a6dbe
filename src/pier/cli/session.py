"""A client session for one platform command: connection, and errors turned into exit codes.

Exit codes scripts can trust: 0 ok; 1 the operation failed or timed out; 2 usage error or
invalid spec; 3 not found; 4 the API cannot be reached or refused the token. Messages go to
stderr, data to stdout.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import click

from pier.cli.render import say
from pier.errors import ConfigError, PierError, SpecError

if TYPE_CHECKING:  # the client loads when a command runs, not for `pier --help`
    from pier.client.api import PierClient

EXIT_FAILED, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_UNREACHABLE = 1, 2, 3, 4


def connect(home: Path | None, api: str | None, token: str | None) -> PierClient:
    """A client for ``api`` and ``token``, each defaulting to what the home folder records."""
    from pier.client.api import PierClient
    from pier.home import PierHome, default_home

    pier_home = PierHome(home or default_home())
    if not api:
        api = str(pier_home.read_address()["api"])
    if not token:
        token = pier_home.read_token()
    return PierClient(api, token)


@contextlib.contextmanager
def session(home: Path | None, api: str | None, token: str | None) -> Iterator[PierClient]:
    """A client whose errors end the command with the right exit code and message."""
    with exit_on_error():
        client = connect(home, api, token)
        try:
            yield client
        finally:
            client.close()


@contextlib.contextmanager
def exit_on_error() -> Iterator[None]:
    """Turn Pier's errors into a message on stderr and the matching exit code."""
    from pier.client.api import PierAPIError, WaitTimeout

    try:
        yield
    except SpecError as exc:
        head = exc.message.split(": ")[0] if exc.problems else exc.message
        fail(f"invalid spec {head}" if exc.problems else exc.message, exc.problems, EXIT_USAGE)
    except PierAPIError as exc:
        if exc.status == 0 or exc.status in (401, 403):
            fail(exc.message, [], EXIT_UNREACHABLE)
        if exc.status == 400:
            fail(exc.message if not exc.problems else "invalid request", exc.problems, EXIT_USAGE)
        if exc.status == 404:
            fail(exc.message, [], EXIT_NOT_FOUND)
        fail(exc.message, [], EXIT_FAILED)
    except ConfigError as exc:  # no running `pier up` found, no token
        fail(exc.message, [], EXIT_UNREACHABLE)
    except WaitTimeout as exc:
        fail(exc.message, [], EXIT_FAILED)
    except PierError as exc:
        fail(exc.message, [], EXIT_FAILED)


def fail(message: str, problems: Sequence[tuple[str, str]], code: int) -> NoReturn:
    """Print ``error: message`` and one line per problem on stderr, and exit with ``code``."""
    click.echo(f"error: {message}" + (":" if problems else ""), err=True)
    for path, problem in problems:
        click.echo(f"  {path}: {problem}", err=True)
    sys.exit(code)


def load_spec(file: Path) -> dict[str, Any]:
    """The spec file as Pier-form JSON, local model paths made absolute against its folder."""
    from pier.spec import load_spec_bytes, resolve_local_paths

    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise click.FileError(str(file), exc.strerror) from None
    parsed = load_spec_bytes(raw, str(file))
    for warning in parsed.warnings:
        say(f"warning: {warning}")
    spec = resolve_local_paths(parsed.spec, file.resolve().parent)
    return spec.model_dump(mode="json")
