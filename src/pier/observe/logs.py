"""Structured logging: JSON lines when not on a terminal, and a cheap access log."""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from typing import IO, Any

import orjson


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time, level, logger, message and any extras."""

    # color_message: uvicorn's terminal copy of the message, with escape codes
    _SKIP = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
        "message",
        "color_message",
    }

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": round(record.created, 6),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in self._SKIP:
                data[key] = value
        if record.exc_info:
            data["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(data, default=str).decode()


def setup_logging(level: str = "info", fmt: str = "auto") -> None:
    """Configure the root logger once at the entry point."""
    handler = logging.StreamHandler(sys.stderr)
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    if use_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


class AccessLog:
    """One JSON line per request, buffered and flushed off the request path.

    Lines collect in memory and are written every ``flush_interval`` seconds (or when
    the buffer passes 64 KiB), so a request never waits on a slow terminal or pipe.
    """

    def __init__(self, stream: IO[str] | None = None, flush_interval: float = 0.25) -> None:
        self._stream = stream if stream is not None else sys.stdout
        self._buf: list[bytes] = []
        self._size = 0
        self._interval = flush_interval
        self._handle: asyncio.TimerHandle | None = None

    def write(
        self, method: str, path: str, status: int, seconds: float, size: int, client: str
    ) -> None:
        line = orjson.dumps(
            {
                "ts": round(time.time(), 6),
                "type": "access",
                "method": method,
                "path": path,
                "status": status,
                "ms": round(seconds * 1000, 3),
                "bytes": size,
                "client": client,
            }
        )
        self._buf.append(line)
        self._size += len(line) + 1
        if self._size > 65536:
            self.flush()
        elif self._handle is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
                return
            self._handle = loop.call_later(self._interval, self.flush)

    def flush(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        if not self._buf:
            return
        data = b"\n".join(self._buf) + b"\n"
        self._buf.clear()
        self._size = 0
        try:
            self._stream.write(data.decode())
            self._stream.flush()
        except (OSError, ValueError):
            pass  # a closed or broken stream must not take requests down
