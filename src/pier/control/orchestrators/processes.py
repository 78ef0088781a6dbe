"""Replica processes on this machine: spawning, identity through /proc, exit status, signals.

Replicas are started with ``os.posix_spawn`` in a session of their own and are never tied
to a Python object (an asyncio subprocess transport kills its child when it is closed or
garbage-collected), so they outlive the control plane and can be re-adopted by pid plus
/proc start time.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Exit:
    """How a process ended: its exit status (negative = killed by that signal), if known."""

    code: int | None

    def describe(self) -> str:
        if self.code is None:
            return "exited while adopted (exit code unknown)"
        if self.code < 0:
            try:
                name = signal.Signals(-self.code).name
            except ValueError:
                name = f"signal {-self.code}"
            return f"killed by {name}"
        return f"exited with code {self.code}"


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on ``port`` now (sockets in TIME_WAIT do not count)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # The replica binds with SO_REUSEADDR too: connections the dead one left in
        # TIME_WAIT must not push its successor onto another port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _stat_fields(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name (which may hold spaces and parentheses)."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rfind(")") + 2 :].split()


def start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot: with the pid, a unique identity."""
    fields = _stat_fields(pid)
    # Field 22 of the whole line is index 19 after "pid (comm)".
    return int(fields[19]) if fields and len(fields) > 19 else None


def is_running(pid: int, ticks: int | None) -> bool:
    """Whether ``pid`` is still the very process we started (not a zombie, not a reused pid)."""
    fields = _stat_fields(pid)
    if not fields or fields[0] in ("Z", "X"):
        return False
    return ticks is None or (len(fields) > 19 and int(fields[19]) == ticks)


def spawn(argv: Sequence[str], env: Mapping[str, str], log_path: Path) -> int:
    """Start ``argv`` in a new session, stdout and stderr appended to ``log_path``; its pid."""
    flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
    return os.posix_spawn(
        argv[0],
        list(argv),
        dict(env),
        file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(log_path), flags, 0o644),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ],
        # Its own session: a Ctrl-C on `pier up` reaches the control plane, not the replicas.
        setsid=True,
    )


def poll_exit(pid: int, ticks: int | None, child: bool) -> Exit | None:
    """None while the process runs; how it ended once it has.

    For our own children ``waitpid`` gives the status and reaps them. An adopted process
    belongs to another parent (or to init), so all we can see is that it is gone, unless
    it happens to be ours after all (same process, new orchestrator).
    """
    if child or not is_running(pid, ticks):
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None if is_running(pid, ticks) else Exit(None)
        if done == 0:
            return None
        return Exit(os.waitstatus_to_exitcode(status))
    return None


def send(pid: int, sig: signal.Signals, group: bool = False) -> None:
    """Signal the process (or its whole session's group); a vanished process is fine."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)
