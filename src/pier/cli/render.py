"""How the platform commands show things: tables, ages and times, state colours, JSON, progress.

Data goes to stdout; messages and progress go to stderr.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:  # the client (and httpx) load when a command runs, not for `pier --help`
    from pier.client.api import PierClient

_STATE_COLOURS = {
    "running": "green",
    "ready": "green",
    "pending": "yellow",
    "starting": "yellow",
    "updating": "cyan",
    "scaling": "cyan",
    "draining": "cyan",
    "degraded": "yellow",
    "backoff": "red",
    "failed": "red",
    "stopped": "bright_black",
}


def say(message: str) -> None:
    """Print a message for the user on stderr."""
    click.echo(message, err=True)


def print_json(doc: Any) -> None:
    """Print a document as indented JSON on stdout."""
    click.echo(json.dumps(doc, indent=2))


def show_warnings(doc: dict[str, Any]) -> None:
    """Print the warnings an API answer carries."""
    for warning in doc.get("warnings", []):
        say(f"warning: {warning}")


def coloured(text: str, padded: str) -> str:
    """``padded`` in the colour of the state ``text`` names, when stdout is a terminal."""
    colour = _STATE_COLOURS.get(text)
    if colour is None or not sys.stdout.isatty():
        return padded
    return click.style(padded, fg=colour)


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]], state_col: int = -1) -> str:
    """Rows aligned under headers; the ``state_col`` column is coloured on a terminal."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    for row in cells:
        parts = [
            coloured(c, c.ljust(w)) if i == state_col else c.ljust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(parts).rstrip())
    return "\n".join(lines)


def indent(text: str) -> str:
    """Every line of ``text`` indented by two spaces."""
    return "\n".join("  " + line for line in text.splitlines())


def age(since: float, now: float | None = None) -> str:
    """How long ago ``since`` was, in its largest whole unit: 3d, 5h, 12m, 40s."""
    seconds = max(0, int((now or time.time()) - since))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def when(at: float) -> str:
    """A timestamp as local date and time."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))


def replica_table(replicas: list[dict[str, Any]]) -> str:
    """The replicas of a service document as a table."""
    rows = [
        [
            r["id"],
            r["revision"],
            r["state"],
            r["address"] or "-",
            r["pid"] if r["pid"] is not None else "-",
            r["restarts"],
            age(r["started_at"]) if r["started_at"] else "-",
            r["reason"],
        ]
        for r in replicas
    ]
    headers = ["ID", "REVISION", "STATE", "ADDRESS", "PID", "RESTARTS", "AGE", "REASON"]
    return table(headers, rows, state_col=2)


def event_table(events: list[dict[str, Any]]) -> str:
    """Events as a table."""
    rows = [
        [when(e["time"]), e["kind"], e["revision"] or "-", e["replica"] or "-", e["message"]]
        for e in events
    ]
    return table(["TIME", "KIND", "REVISION", "REPLICA", "MESSAGE"], rows)


def wait_with_progress(client: PierClient, name: str, timeout: float) -> None:
    """Show progress until the service runs its desired replicas (WaitTimeout on timeout)."""
    tty = sys.stderr.isatty()
    started = time.monotonic()
    last = ""

    def progress(doc: dict[str, Any]) -> None:
        nonlocal last
        line = (
            f"ready {doc['ready']}/{doc['replicas']}  {doc['status']}  revision {doc['revision']}"
        )
        if tty:
            elapsed = int(time.monotonic() - started)
            click.echo(f"\r\033[K{line}  {elapsed}s", err=True, nl=False)
        elif line != last:
            say(line)
        last = line

    try:
        doc = client.wait(name, timeout, progress=progress)
    finally:
        if tty:
            click.echo(err=True)
    if doc["status"] == "stopped":
        say(f"service {name} is stopped; `pier start {name}` runs its replicas")
    else:
        say(f"service {name} is running: {doc['ready']}/{doc['replicas']} ready")
