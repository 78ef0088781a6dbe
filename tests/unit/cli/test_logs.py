"""`pier logs`: readable, time-ordered lines on a terminal or with -o text; raw lines in a pipe."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from pier.cli.logs_format import LogLine, Merger, clock, parse, render
from pier.control.records import ReplicaRecord, ReplicaState
from pier.control.store import Store
from tests.unit.cli.apiserver import TOKEN, Hooks

T0 = 1_700_000_000.0


def record(replica: str, ts: float, **fields: Any) -> str:
    return f"{replica} | " + json.dumps({"ts": ts, **fields})


# Two replicas' lines as the API sends them: one replica's block, then the other's.
LINES = [
    record("iris-1-a", T0 + 0.1, level="warning", logger="pier", msg="slow load", model="iris"),
    record(
        "iris-1-a",
        T0 + 0.4,
        type="access",
        method="POST",
        path="/v1/models/iris:predict",
        status=200,
        ms=1.234,
        bytes=10,
        client="127.0.0.1",
    ),
    "iris-1-a | Traceback (most recent call last):",
    record("iris-1-b", T0 + 0.2, level="info", logger="pier", msg="ready"),
    record("iris-1-b", T0 + 0.5, level="error", logger="pier", msg="boom", exc="Trace\n  line"),
]


def expected_text() -> str:
    at = [clock(T0 + d) for d in (0.1, 0.2, 0.4, 0.5)]
    return "\n".join(
        [
            f"{at[0]} iris-1-a WARNING slow load  model=iris",
            f"{at[1]} iris-1-b INFO    ready",
            f"{at[2]} iris-1-a ACCESS  POST /v1/models/iris:predict 200 1.2 ms",
            f"{' ' * 12} iris-1-a Traceback (most recent call last):",
            f"{at[3]} iris-1-b ERROR   boom",
            "    Trace",
            "      line",
        ]
    )


def two_replicas(store: Store, pier: Any, tmp_path: Path) -> None:
    spec = tmp_path / "iris.yaml"
    spec.write_text("name: iris\nmodel: s3://bucket/iris\nprocessor: sklearn\nreplicas: 2\n")
    assert pier("create", str(spec), "--no-wait").exit_code == 0
    store.sync_replicas(
        ReplicaRecord(rid, "iris", 1, ReplicaState.READY, "127.0.0.1:1")
        for rid in ("iris-1-a", "iris-1-b")
    )


# -- formatting (pure) ----------------------------------------------------------------------


def test_clock_is_local_time_with_milliseconds() -> None:
    assert clock(T0 + 0.1239) == time.strftime("%H:%M:%S", time.localtime(T0)) + ".123"
    assert clock(None) == " " * 12


def test_parse_reads_prefix_record_and_time() -> None:
    line = parse(LINES[0])
    assert (line.replica, line.ts, line.record and line.record["msg"]) == (
        "iris-1-a",
        T0 + 0.1,
        "slow load",
    )
    plain = parse('{"msg": "no prefix"}', replica="iris-1-z")
    assert plain.replica == "iris-1-z" and plain.ts is None and plain.record == {"msg": "no prefix"}


def test_parse_survives_whatever_a_replica_prints() -> None:
    for raw in [
        "",
        "{",
        "{" * 5000 + "}" * 5000,
        '{"ts": "soon"}',
        '{"ts": 1e300}',
        "[1, 2]",
        "x | y",
    ]:
        line = parse(raw)
        assert line.ts is None
        assert isinstance(render(line, 8), str)


def test_merger_orders_by_time_and_keeps_untimed_lines_after_their_predecessor() -> None:
    merger = Merger(window=0.5)
    for i, raw in enumerate(LINES):
        merger.add(parse(raw), now=10.0 + i * 0.01)
    assert merger.due(10.3) == []  # the first line has waited 0.3 s of 0.5
    assert merger.wait(10.3) == pytest.approx(0.2)
    out = merger.due(10.5)
    assert [(line.replica, line.ts) for line in out] == [
        ("iris-1-a", T0 + 0.1),
        ("iris-1-b", T0 + 0.2),
        ("iris-1-a", T0 + 0.4),
        ("iris-1-a", None),
        ("iris-1-b", T0 + 0.5),
    ]
    assert merger.due(11.0) == [] and merger.wait(11.0) is None


def test_render_colours_levels_only_when_asked() -> None:
    warning = parse(LINES[0])
    assert "\x1b[" not in render(warning, 8)
    assert "\x1b[33m" in render(warning, 8, colour=True)  # yellow


def test_render_without_json() -> None:
    line = LogLine("r1", "plain text", None, None)
    assert render(line, 4) == f"{' ' * 12} r1   plain text"


# -- the command ----------------------------------------------------------------------------


def test_text_output_is_readable_and_time_ordered(
    pier: Any, store: Store, hooks: Hooks, tmp_path: Path
) -> None:
    two_replicas(store, pier, tmp_path)
    hooks.log_lines = LINES
    result = pier("logs", "iris", "-o", "text")
    assert result.exit_code == 0, result.output
    assert result.stdout == expected_text() + "\n"
    followed = pier("logs", "iris", "-o", "text", "--follow")
    assert followed.exit_code == 0 and followed.stdout == result.stdout


def test_raw_lines_in_a_pipe_and_with_json(
    pier: Any, store: Store, hooks: Hooks, tmp_path: Path
) -> None:
    two_replicas(store, pier, tmp_path)
    hooks.log_lines = LINES
    assert pier("logs", "iris").stdout == "\n".join(LINES) + "\n"  # CliRunner's stdout: no tty
    assert pier("logs", "iris", "-o", "json").stdout == "\n".join(LINES) + "\n"


def test_a_lone_replica_is_named_though_the_api_does_not_prefix(
    pier: Any, store: Store, hooks: Hooks, tmp_path: Path
) -> None:
    spec = tmp_path / "iris.yaml"
    spec.write_text("name: iris\nmodel: s3://bucket/iris\nprocessor: sklearn\n")
    pier("create", str(spec), "--no-wait")
    store.sync_replicas([ReplicaRecord("iris-1-a", "iris", 1, ReplicaState.READY, "127.0.0.1:1")])
    hooks.log_lines = [json.dumps({"ts": T0, "level": "info", "msg": "hello"})]
    result = pier("logs", "iris", "-o", "text")
    assert result.stdout == f"{clock(T0)} iris-1-a INFO    hello\n"


def test_text_is_the_default_on_a_terminal(
    pier: Any, store: Store, hooks: Hooks, tmp_path: Path, api: str
) -> None:
    two_replicas(store, pier, tmp_path)
    hooks.log_lines = LINES
    main, secondary = pty.openpty()
    env = {**os.environ, "PIER_HOME": str(tmp_path / "no-home")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "pier.cli.main", "logs", "iris", "--api", api, "--token", TOKEN],
        stdout=secondary,
        stderr=subprocess.PIPE,
        env=env,
    )
    os.close(secondary)
    out = b""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the child closed its end
                break
            if not chunk:
                break
            out += chunk
        elif proc.poll() is not None:
            break
    os.close(main)
    assert proc.wait(10) == 0, proc.stderr.read() if proc.stderr else ""
    if proc.stderr:
        proc.stderr.close()
    text = out.decode().replace("\r\n", "\n")
    plain = text.replace("\x1b[33m", "").replace("\x1b[31m", "").replace("\x1b[36m", "")
    assert plain.replace("\x1b[0m", "") == expected_text() + "\n"
