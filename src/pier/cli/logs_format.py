"""How ``pier logs`` shows replica log lines to a person: one readable line each, in time order.

The API sends each replica's lines as the replica wrote them (JSON log records, JSON access
lines, or plain text such as a traceback), prefixed by ``<replica id> | `` when it merges
several replicas. These pure functions parse, order and render them; the command does the I/O.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from typing import Any

import click

# A replica id as the orchestrators write them (service name, revision, suffix), then " | ".
_PREFIX = re.compile(r"([a-z0-9][a-z0-9._-]{0,127}) \| ")

# Keys every record has (shown in their own columns) or that are shown in another form.
_SHOWN = frozenset({"ts", "level", "logger", "msg", "exc", "type"})

_LEVEL_COLOURS = {"WARNING": "yellow", "ERROR": "red", "CRITICAL": "red", "ACCESS": "cyan"}


@dataclass(frozen=True)
class LogLine:
    """One line of a replica's log, parsed."""

    replica: str
    raw: str  # the line as the replica wrote it, without the API's replica prefix
    record: dict[str, Any] | None  # the JSON object, when the line is one
    ts: float | None  # the record's own time, when it has one


def parse(line: str, replica: str = "-") -> LogLine:
    """Split off the API's ``<replica id> | `` prefix and read the JSON record, if any.

    ``replica`` names the replica of lines that carry no prefix (the API leaves it out when
    it sends one replica's lines).
    """
    found = _PREFIX.match(line)
    if found:
        replica, line = found.group(1), line[found.end() :]
    record: dict[str, Any] | None = None
    if line.startswith("{"):
        try:
            loaded = json.loads(line)
        except (ValueError, RecursionError):  # a line is whatever the replica printed
            loaded = None
        if isinstance(loaded, dict):
            record = loaded
    ts = record.get("ts") if record is not None else None
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not 0 <= ts < 1e11:
        ts = None  # not a time a clock can show (year 5138 is far enough)
    return LogLine(replica, line, record, None if ts is None else float(ts))


def clock(ts: float | None) -> str:
    """``HH:MM:SS.mmm`` in local time, or blanks of the same width when there is no time."""
    if ts is None:
        return " " * 12
    whole = int(ts)
    millis = int((ts - whole) * 1000)
    return f"{time.strftime('%H:%M:%S', time.localtime(whole))}.{millis:03d}"


def render(line: LogLine, width: int = 0, colour: bool = False) -> str:
    """``HH:MM:SS.mmm replica LEVEL message``; an access line's message is method path status ms.

    ``width`` pads the replica column; ``colour`` colours warnings, errors and access lines.
    Lines that are not JSON records are shown as they are, after the time and replica columns.
    """
    replica = line.replica.ljust(width)
    record = line.record
    if record is None:
        return f"{clock(None)} {replica} {line.raw}".rstrip()
    if record.get("type") == "access":
        level = "ACCESS"
        message = _access(record)
    else:
        level = str(record.get("level", "")).upper() or "-"
        message = str(record.get("msg", ""))
        extras = [f"{k}={_value(v)}" for k, v in record.items() if k not in _SHOWN]
        if extras:
            message = f"{message}  {' '.join(extras)}"
    shown_level = level.ljust(7)
    if colour and level in _LEVEL_COLOURS:
        shown_level = click.style(shown_level, fg=_LEVEL_COLOURS[level])
    text = f"{clock(line.ts)} {replica} {shown_level} {message}".rstrip()
    exc = record.get("exc")
    if isinstance(exc, str) and exc:
        text += "\n" + "\n".join("    " + part for part in exc.splitlines())
    return text


def _access(record: dict[str, Any]) -> str:
    ms = record.get("ms")
    took = f"{ms:.1f} ms" if isinstance(ms, int | float) else "- ms"
    return (
        f"{record.get('method', '-')} {record.get('path', '-')} {record.get('status', '-')} {took}"
    )


def _value(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return json.dumps(text) if (" " in text or not text) else text


@dataclass
class Merger:
    """Holds lines for ``window`` seconds after the first arrives, then lets them out in time order.

    Replicas' lines reach the API one file after another, so lines close in time can arrive
    apart; holding them briefly lets several replicas interleave by time. A line without a
    time of its own (a traceback's) keeps its place after the line before it from the same
    replica.
    """

    window: float
    _held: list[tuple[float, int, LogLine]] = field(default_factory=list)
    _since: float | None = None
    _last: dict[str, float] = field(default_factory=dict)
    _count: int = 0

    def add(self, line: LogLine, now: float) -> None:
        """Hold ``line``, which arrived at ``now``."""
        if line.ts is not None:
            self._last[line.replica] = line.ts
        key = line.ts if line.ts is not None else self._last.get(line.replica, 0.0)
        self._held.append((key, self._count, line))
        self._count += 1
        if self._since is None:
            self._since = now

    def due(self, now: float) -> list[LogLine]:
        """The held lines, in time order, once the first has waited ``window``; else none."""
        if self._since is None or now - self._since < self.window:
            return []
        return self.flush()

    def flush(self) -> list[LogLine]:
        """Every held line, in time order."""
        held, self._held, self._since = self._held, [], None
        return [line for _, _, line in sorted(held, key=lambda h: (h[0], h[1]))]

    def wait(self, now: float) -> float | None:
        """Seconds until the held lines are due, or None when none are held."""
        return None if self._since is None else max(0.0, self._since + self.window - now)
