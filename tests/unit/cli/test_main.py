"""The root `pier` group: its table matches the commands, help lists them, typos get a suggestion."""

from __future__ import annotations

import importlib
import inspect

import click
import pytest
from click.testing import CliRunner

from pier.cli.main import COMMANDS, cli


@pytest.mark.parametrize("name", list(COMMANDS))
def test_the_table_says_what_each_command_says(name: str) -> None:
    entry = COMMANDS[name]
    command = getattr(importlib.import_module(entry.module), entry.attribute)
    assert isinstance(command, click.Command) and command.name == name
    first_paragraph = inspect.cleandoc(command.help or "").split("\n\n")[0].replace("\n", " ")
    assert entry.help == first_paragraph


def test_help_shows_each_command_once_in_sections() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0
    lines = result.output.splitlines()
    commands = lines[lines.index("Model server:") :]
    listed = [line.split()[0] for line in commands if line.startswith("  ")]
    assert sorted(listed) == sorted(COMMANDS)
    assert "Services:" in result.output and "Inspect:" in result.output


def test_a_loaded_command_runs_and_help_still_lists_it() -> None:
    result = CliRunner().invoke(cli, ["spec", "--help"])
    assert result.exit_code == 0 and "validate" in result.output
    again = CliRunner().invoke(cli, ["--help"])
    rows = [line.split() for line in again.output.splitlines()]
    assert [row[1:3] for row in rows if row[:1] == ["spec"]] == [["Check", "service"]]


@pytest.mark.parametrize(
    ("args", "suggestion"),
    [
        (["lsit"], "No such command 'lsit'. Did you mean 'list'?"),
        (["describ", "x"], "No such command 'describ'. Did you mean 'describe'?"),
        (["modles"], "No such command 'modles'. Did you mean 'models'?"),
        (["models", "dmeo"], "No such command 'dmeo'. Did you mean 'demo'?"),
        (["spec", "valdate"], "No such command 'valdate'. Did you mean 'validate'?"),
    ],
)
def test_unknown_command_suggests_the_closest(args: list[str], suggestion: str) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 2
    assert suggestion in result.stderr


def test_unknown_command_with_nothing_close() -> None:
    result = CliRunner().invoke(cli, ["zzzzzz"])
    assert result.exit_code == 2
    assert "No such command 'zzzzzz'." in result.stderr and "Did you mean" not in result.stderr


def test_unknown_option_and_version() -> None:
    assert "No such option '--nope'" in CliRunner().invoke(cli, ["--nope"]).stderr
    version = CliRunner().invoke(cli, ["--version"])
    assert version.exit_code == 0 and version.output.startswith("pier 0.")
