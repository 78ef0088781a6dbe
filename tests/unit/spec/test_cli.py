"""``pier spec schema`` and ``pier spec validate``."""

from __future__ import annotations

import json
from pathlib import Path

import click
from click.testing import CliRunner

from pier.cli.spec_cmd import spec


@click.group()
def cli() -> None:
    """Test harness standing in for the ``pier`` group."""


cli.add_command(spec)


def test_schema_prints_indented_json() -> None:
    result = CliRunner().invoke(cli, ["spec", "schema"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("{\n  ")
    assert json.loads(result.stdout)["title"] == "Pier service spec"


def test_validate_ok(tmp_path: Path) -> None:
    path = tmp_path / "svc.yaml"
    path.write_text("name: resnet\nmodel: ./resnet\n")
    result = CliRunner().invoke(cli, ["spec", "validate", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout == "ok: resnet (pier form)\n"
    assert result.stderr == ""


def test_validate_eas_with_warnings(tmp_path: Path) -> None:
    path = tmp_path / "service.json"
    path.write_text(
        json.dumps(
            {"name": "mnist", "model_path": "oss://b/m", "token": "t", "metadata": {"instance": 1}}
        )
    )
    result = CliRunner().invoke(cli, ["spec", "validate", str(path)])
    assert result.exit_code == 0, result.output
    assert result.stdout == "ok: mnist (eas form)\n"
    assert result.stderr == "warning: token: valid on EAS but not used by Pier; ignored\n"


def test_validate_lists_problems_and_exits_2(tmp_path: Path) -> None:
    path = tmp_path / "svc.yaml"
    path.write_text("name: Resnet\nmodel: ./resnet\nreplicas: -1\n")
    result = CliRunner().invoke(cli, ["spec", "validate", str(path)])
    assert result.exit_code == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == f"{path}: 2 problem(s)"
    assert lines[1].startswith("  name: 'Resnet' is not a valid name")
    assert lines[2] == "  replicas: must be >= 0"


def test_validate_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "svc.json"
    path.write_text('{"name": "a",,}')
    result = CliRunner().invoke(cli, ["spec", "validate", str(path)])
    assert result.exit_code == 2
    assert "line 1, column 14: invalid JSON" in result.stderr


def test_validate_missing_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["spec", "validate", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2  # click's usage error
    assert "does not exist" in result.stderr
