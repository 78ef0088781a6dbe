"""``pier create | update | scale | stop | start | delete``: change a service's desired state."""

from __future__ import annotations

from pathlib import Path

import click

from pier.cli.options import connection_options, wait_options
from pier.cli.render import say, show_warnings, wait_with_progress
from pier.cli.session import EXIT_USAGE, fail, load_spec, session


@click.command("create")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@wait_options
@connection_options
def create(
    file: Path, wait: bool, timeout: float, home: Path | None, api: str | None, token: str | None
) -> None:
    """Create a service from a spec FILE (JSON or YAML, Pier or EAS form)."""
    with session(home, api, token) as client:
        doc = client.create(load_spec(file))
        show_warnings(doc)
        name = doc["name"]
        say(f"created service {name} (revision {doc['revision']}, {doc['replicas']} replica(s))")
        for protocol, url in doc["endpoints"].items():
            say(f"  {protocol:9}  {url}")
        if wait:
            wait_with_progress(client, name, timeout)


@click.command("update")
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@wait_options
@connection_options
def update(
    name: str,
    file: Path,
    wait: bool,
    timeout: float,
    home: Path | None,
    api: str | None,
    token: str | None,
) -> None:
    """Roll service NAME to a new revision from a spec FILE."""
    with session(home, api, token) as client:
        spec = load_spec(file)
        if spec["name"] != name:
            fail(f"{file} describes service '{spec['name']}', not '{name}'", [], EXIT_USAGE)
        doc = client.update(name, spec)
        show_warnings(doc)
        if doc["changed"]:
            say(f"updated service {name} to revision {doc['revision']}")
        else:
            say(f"no change: service {name} already runs this spec (revision {doc['revision']})")
        if wait:
            wait_with_progress(client, name, timeout)


@click.command("scale")
@click.argument("name")
@click.argument("replicas", type=click.IntRange(0, 64))
@wait_options
@connection_options
def scale(
    name: str,
    replicas: int,
    wait: bool,
    timeout: float,
    home: Path | None,
    api: str | None,
    token: str | None,
) -> None:
    """Set the desired replica count of service NAME (0..64)."""
    with session(home, api, token) as client:
        doc = client.scale(name, replicas)
        say(f"scaled service {name} to {doc['replicas']} replica(s)")
        if wait:
            wait_with_progress(client, name, timeout)


@click.command("stop")
@click.argument("name")
@connection_options
def stop(name: str, home: Path | None, api: str | None, token: str | None) -> None:
    """Stop every replica of service NAME (its desired count is kept)."""
    with session(home, api, token) as client:
        client.stop(name)
    say(f"stopped service {name}")


@click.command("start")
@click.argument("name")
@wait_options
@connection_options
def start(
    name: str, wait: bool, timeout: float, home: Path | None, api: str | None, token: str | None
) -> None:
    """Run service NAME's replicas again after `pier stop`."""
    with session(home, api, token) as client:
        doc = client.start(name)
        say(f"started service {name} ({doc['replicas']} replica(s))")
        if wait:
            wait_with_progress(client, name, timeout)


@click.command("delete")
@click.argument("name")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@connection_options
def delete(name: str, yes: bool, home: Path | None, api: str | None, token: str | None) -> None:
    """Delete service NAME, its revisions and its replicas."""
    if not yes:
        click.confirm(f"delete service {name} and stop its replicas?", abort=True, err=True)
    with session(home, api, token) as client:
        client.delete(name)
    say(f"deleted service {name}")
