"""``pier logs``: a service's replica logs, readable and in time order on a terminal, raw in a pipe."""

from __future__ import annotations

import queue
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import click

from pier.cli.logs_format import LogLine, Merger, parse, render
from pier.cli.options import connection_options
from pier.cli.session import session

#: How long `--follow` holds a line so that other replicas' lines of the same moment can pass it.
FOLLOW_WINDOW = 0.5

_END = object()


@click.command("logs")
@click.argument("name")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option("--replica", default=None, metavar="ID", help="Only this replica's lines.")
@click.option(
    "--tail",
    type=click.IntRange(0, 100_000),
    default=100,
    show_default=True,
    help="Lines of history per replica.",
)
@click.option(
    "-o",
    "--output",
    type=click.Choice(["auto", "text", "json"]),
    default="auto",
    show_default=True,
    help="text: 'HH:MM:SS.mmm replica LEVEL message' lines in time order; json: the replicas' "
    "own lines as they wrote them; auto: text on a terminal, json in a pipe or file.",
)
@connection_options
def logs(
    name: str,
    follow: bool,
    replica: str | None,
    tail: int,
    output: str,
    home: Path | None,
    api: str | None,
    token: str | None,
) -> None:
    """Print the log lines of service NAME's replicas."""
    text = output == "text" or (output == "auto" and sys.stdout.isatty())
    with session(home, api, token) as client:
        try:
            if not text:
                for line in client.logs(name, tail=tail, follow=follow, replica=replica):
                    click.echo(line)
                return
            if replica is None:
                # The API prefixes lines with their replica only when it sends several
                # replicas' lines; a lone replica's lines are named after the only one there is.
                ids = [r["id"] for r in client.replicas(name)]
                replica_name = ids[0] if len(ids) == 1 else "-"
            else:
                replica_name = replica
            lines = client.logs(name, tail=tail, follow=follow, replica=replica)
            parsed = _arrivals(lines, replica_name, follow)
            _print(parsed, len(replica_name), sys.stdout.isatty())
        except KeyboardInterrupt:
            sys.exit(130)


def _print(batches: Iterable[list[LogLine]], width: int, colour: bool) -> None:
    for batch in batches:
        width = max([width, *(len(line.replica) for line in batch)])
        for line in batch:
            click.echo(render(line, width, colour))


def _arrivals(lines: Iterator[str], replica: str, follow: bool) -> Iterator[list[LogLine]]:
    """Batches of parsed lines in time order: all at once, or (``follow``) as they fall due."""
    merger = Merger(FOLLOW_WINDOW)
    if not follow:
        for raw in lines:
            merger.add(parse(raw, replica), 0.0)
        yield merger.flush()
        return
    # A reader thread feeds a queue so that held lines come out on time even while the
    # stream is quiet (the stream itself blocks until the next line).
    arrived: queue.Queue[object] = queue.Queue()

    def pump() -> None:
        try:
            for raw in lines:
                arrived.put(raw)
        except BaseException as exc:  # handed to the main thread, which reports it
            arrived.put(exc)
        else:
            arrived.put(_END)

    threading.Thread(target=pump, name="pier-logs-reader", daemon=True).start()
    while True:
        try:
            item = arrived.get(timeout=merger.wait(time.monotonic()))
        except queue.Empty:
            yield merger.due(time.monotonic())
            continue
        if item is _END:
            break
        if isinstance(item, BaseException):
            raise item
        merger.add(parse(str(item), replica), time.monotonic())
        yield merger.due(time.monotonic())
    yield merger.flush()
