"""``pier list | describe | events | revisions``: read services as tables or as the API's JSON."""

from __future__ import annotations

from pathlib import Path

import click

from pier.cli.options import connection_options, output_option
from pier.cli.render import (
    age,
    coloured,
    event_table,
    indent,
    print_json,
    replica_table,
    say,
    table,
    when,
)
from pier.cli.session import session


@click.command("list")
@output_option
@connection_options
def list_(output: str, home: Path | None, api: str | None, token: str | None) -> None:
    """List every service."""
    with session(home, api, token) as client:
        services = client.list()
    if output == "json":
        print_json({"services": services})
        return
    if not services:
        say("no services; create one with `pier create SPEC_FILE`")
        return
    rows = [
        [
            s["name"],
            s["status"],
            f"{s['ready']}/{s['replicas']}",
            s["revision"],
            age(s["created_at"]),
        ]
        for s in services
    ]
    click.echo(table(["NAME", "STATUS", "READY", "REVISION", "AGE"], rows, state_col=1))


@click.command("describe")
@click.argument("name")
@output_option
@connection_options
def describe(name: str, output: str, home: Path | None, api: str | None, token: str | None) -> None:
    """Show a service in full: status, spec, endpoints, replicas, recent events."""
    with session(home, api, token) as client:
        doc = client.get(name)
    if output == "json":
        print_json(doc)
        return
    spec = doc["spec"]
    status = coloured(doc["status"], doc["status"])
    fields = [
        ("Name", doc["name"]),
        ("Status", f"{status} ({doc['ready']}/{doc['replicas']} ready)"),
        ("Revision", doc["revision"]),
        ("Model", spec.get("model", "")),
        ("Processor", spec.get("processor") or "(inferred)"),
        ("Created", f"{when(doc['created_at'])} ({age(doc['created_at'])} ago)"),
        ("Updated", f"{when(doc['updated_at'])} ({age(doc['updated_at'])} ago)"),
    ]
    res = spec.get("resources") or {}
    asked = ", ".join(
        f"{k} {res[k]}{' MiB' if k == 'memory' else ''}"
        for k in ("cpu", "memory", "gpu")
        if res.get(k)
    )
    fields.append(("Resources", asked or "no limits asked"))
    enforced = sorted({r["limits"] for r in doc.get("replica_list", []) if r.get("limits")})
    if enforced:
        fields.append(("Enforced", "; ".join(enforced)))
    for label, value in fields:
        click.echo(f"{label + ':':11} {value}")
    click.echo("Endpoints:")
    for protocol, url in doc["endpoints"].items():
        click.echo(f"  {protocol:9}  {url}")
    replicas = doc.get("replica_list", [])
    click.echo("Replicas:" + ("" if replicas else " none"))
    if replicas:
        click.echo(indent(replica_table(replicas)))
    events = doc.get("events", [])
    click.echo("Events:" + ("" if events else " none"))
    if events:
        click.echo(indent(event_table(events)))


@click.command("events")
@click.argument("name")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@output_option
@connection_options
def events(
    name: str, limit: int, output: str, home: Path | None, api: str | None, token: str | None
) -> None:
    """Show the newest events of service NAME, oldest first."""
    with session(home, api, token) as client:
        found = client.events(name, limit=limit)
    if output == "json":
        print_json({"events": found})
    elif found:
        click.echo(event_table(found))
    else:
        say(f"no events for service {name}")


@click.command("revisions")
@click.argument("name")
@output_option
@connection_options
def revisions(
    name: str, output: str, home: Path | None, api: str | None, token: str | None
) -> None:
    """List the revisions of service NAME (* marks the current one)."""
    with session(home, api, token) as client:
        found = client.revisions(name)
    if output == "json":
        print_json({"revisions": found})
        return
    current = max((r["revision"] for r in found), default=0)
    rows = [
        [
            f"{r['revision']}{' *' if r['revision'] == current else ''}",
            when(r["created_at"]),
            r["spec"].get("replicas", "-"),
            r["spec"].get("processor") or "-",
            r["spec"].get("model", ""),
        ]
        for r in found
    ]
    click.echo(table(["REVISION", "CREATED", "REPLICAS", "PROCESSOR", "MODEL"], rows))
