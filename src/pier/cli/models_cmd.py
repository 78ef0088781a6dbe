"""``pier models``: write the demo repository, push models to storage, list what is there."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import click


@click.group()
def models() -> None:
    """Model repository tools."""


@models.command("demo")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def models_demo(directory: Path) -> None:
    """Write the demo model repository (half_plus_two, resnet50, iris) into DIRECTORY."""
    from pier.serving.demo import write_demo_repository

    names = write_demo_repository(directory)
    click.echo(f"wrote {', '.join(names)} to {directory}")


@models.command("push")
@click.argument("local", type=click.Path(exists=True, path_type=Path))
@click.argument("uri")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bars.")
def models_push(local: Path, uri: str, progress: bool) -> None:
    """Upload LOCAL (a model repository, a model or a version folder, or a file) to URI.

    Files already there with the same size and checksum are skipped, as `s3cmd sync` does.
    """
    from pier.storage import StorageOptions, push

    with _storage_errors():
        result = push(local, uri, StorageOptions.from_env(), progress=progress)
    click.echo(
        f"uploaded {len(result.uploaded)} file(s) ({result.bytes_uploaded} bytes), "
        f"skipped {len(result.skipped)} unchanged"
    )


@models.command("ls")
@click.argument("uri")
@click.option("-o", "--output", type=click.Choice(["table", "json"]), default="table")
def models_ls(uri: str, output: str) -> None:
    """List what is at URI (a folder or a bucket path)."""
    import orjson

    from pier.storage import StorageOptions, ls

    with _storage_errors():
        entries = ls(uri, StorageOptions.from_env())
    if output == "json":
        rows = [
            {
                "name": e.name,
                "size": e.size,
                "modified": e.modified and e.modified.isoformat(),
                "is_dir": e.is_dir,
            }
            for e in entries
        ]
        click.echo(orjson.dumps(rows, option=orjson.OPT_INDENT_2).decode())
        return
    for e in entries:
        size = "-" if e.is_dir else str(e.size if e.size is not None else "?")
        when = e.modified.strftime("%Y-%m-%d %H:%M:%S") if e.modified else ""
        click.echo(f"{'DIR' if e.is_dir else '   '}  {size:>12}  {when:19}  {e.name}")


@contextlib.contextmanager
def _storage_errors() -> Iterator[None]:
    from pier.errors import PierError

    try:
        yield
    except PierError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(1)
