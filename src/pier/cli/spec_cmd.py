"""``pier spec``: print the service spec's JSON Schema, or check a spec file without creating anything."""

from __future__ import annotations

import json
from pathlib import Path

import click

from pier.errors import SpecError
from pier.spec import load_spec_bytes, spec_schema

#: Exit status for a spec that is not valid, as `pier serve` uses for invalid settings.
INVALID_SPEC_EXIT = 2


@click.group()
def spec() -> None:
    """Check service specs (Pier or PAI-EAS form) and print their schema."""


@spec.command()
def schema() -> None:
    """Print the JSON Schema of Pier's spec form."""
    click.echo(json.dumps(spec_schema(), indent=2))


@spec.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def validate(file: Path) -> None:
    """Check a JSON or YAML spec FILE; list every problem (exit status 2) or say it is ok."""
    try:
        parsed = load_spec_bytes(file.read_bytes(), str(file))
    except OSError as exc:
        raise click.FileError(str(file), hint=exc.strerror or str(exc)) from None
    except SpecError as exc:
        click.echo(f"{file}: {len(exc.problems)} problem(s)", err=True)
        for path, message in exc.problems:
            click.echo(f"  {path}: {message}", err=True)
        raise SystemExit(INVALID_SPEC_EXIT) from None
    click.echo(f"ok: {parsed.spec.name} ({parsed.form} form)")
    for warning in parsed.warnings:
        click.echo(f"warning: {warning}", err=True)
