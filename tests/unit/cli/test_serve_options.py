"""`pier serve`'s options come from ServerSettings: one each, named, typed and shown from it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from pier.cli.serve_cmd import ServeCommand, serve
from pier.cli.serve_options import env_of, flag_of, setting_options, settings_from
from pier.config import ServerSettings

# The flags users and scripts already know (README, `pier up`'s replicas, bench, tests).
KNOWN_FLAGS = (
    "--model-repository", "--model", "--model-config", "--cache-dir", "--cache-size",
    "--http-host", "--http-port", "--grpc-port", "--grpc-max-message-size", "--workers",
    "--model-control-mode", "--load-model", "--poll-interval", "--max-request-size",
    "--access-log", "--no-access-log", "--strict-readiness", "--no-strict-readiness",
    "--log-level", "--log-format", "--graceful-timeout", "--executor-threads",
)  # fmt: skip


@pytest.fixture(autouse=True)
def _no_pier_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [k for k in os.environ if k.startswith("PIER_")]:
        monkeypatch.delenv(name)


def _by_name() -> dict[str, click.Option]:
    return {str(o.name): o for o in setting_options()}


def test_every_setting_has_an_option_with_its_help() -> None:
    options = _by_name()
    assert list(options) == list(ServerSettings.model_fields)
    for name, field in ServerSettings.model_fields.items():
        assert field.description, f"ServerSettings.{name} needs a description: it is the help"
        assert options[name].help == field.description
        assert flag_of(name) in options[name].opts


def test_the_known_flags_are_kept() -> None:
    flags = {flag for o in setting_options() for flag in (*o.opts, *o.secondary_opts)}
    assert set(KNOWN_FLAGS) <= flags


def test_help_shows_each_default_and_variable() -> None:
    out = CliRunner().invoke(serve, ["--help"], terminal_width=200)
    assert out.exit_code == 0, out.output
    assert "PIER_HTTP_PORT; default: 8501; 0<=x<=65535]" in out.output
    assert "PIER_ACCESS_LOG; default: access-log]" in out.output
    assert "PIER_MODEL_CONFIG_FILE]" in out.output
    assert "PIER_CACHE_DIR; default: ~/.cache/pier/models]" in out.output
    for name in ServerSettings.model_fields:
        assert env_of(name) in out.output


def _given(args: list[str]) -> dict[str, Any]:
    """What the serve command passes on for ``args``: only what the command line gave."""
    seen: dict[str, Any] = {}

    def capture(**values: Any) -> None:
        ctx = click.get_current_context()
        seen.update(
            (k, v)
            for k, v in values.items()
            if ctx.get_parameter_source(k) is click.core.ParameterSource.COMMANDLINE
        )

    command = ServeCommand("serve", callback=capture)
    out = CliRunner().invoke(command, args)
    assert out.exit_code == 0, out.output
    return seen


def test_only_what_the_command_line_gave_is_passed_on() -> None:
    given = _given(
        ["--model-repository", "/m", "--no-access-log", "--load-model", "a", "--load-model", "b"]
    )
    assert given == {"model_repository": "/m", "access_log": False, "load_models": ("a", "b")}
    settings = settings_from(given)
    assert settings.access_log is False and settings.load_models == ["a", "b"]
    assert settings.http_port == 8501


def test_command_line_then_environment_then_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIER_MODEL_REPOSITORY", "/from-env")
    monkeypatch.setenv("PIER_HTTP_PORT", "9001")
    monkeypatch.setenv("PIER_LOAD_MODELS", "a, b")
    monkeypatch.setenv("PIER_HOME", "/home-of-pier-up")  # not a server setting: ignored
    from_env = settings_from({})
    assert (from_env.model_repository, from_env.http_port) == ("/from-env", 9001)
    assert from_env.load_models == ["a", "b"] and from_env.grpc_port == 8500
    flagged = settings_from(_given(["--http-port", "9002"]))
    assert flagged.http_port == 9002 and flagged.model_repository == "/from-env"


def test_a_source_on_the_command_line_replaces_the_other_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PIER_MODEL_REPOSITORY", "/repo")
    monkeypatch.setenv("PIER_MODEL_CONFIG_FILE", "/config.json")
    one = settings_from(_given(["--model", "m=/m"]))
    assert (one.model, one.model_repository) == ("m=/m", "")
    assert one.model_config_file == Path("/config.json")  # it goes with --model: kept
    monkeypatch.setenv("PIER_MODEL", "m=/m")
    monkeypatch.delenv("PIER_MODEL_REPOSITORY")
    repo = settings_from(_given(["--model-repository", "/other"]))
    assert (repo.model, repo.model_repository, repo.model_config_file) == ("", "/other", None)


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--model-repository", "/m", "--workers", "0"], {}, "--workers"),
        (["--model-repository", "/m"], {"PIER_WORKERS": "0"}, "PIER_WORKERS"),
        (["--model-repository", "/m"], {"PIER_HTTP_PORT": "http"}, "PIER_HTTP_PORT"),
        (["--model-repository", "/m"], {"PIER_ACCESS_LOG": "maybe"}, "PIER_ACCESS_LOG"),
        ([], {}, "nothing to serve"),
        (["--model-repository", "/m", "--model", "m=/x"], {}, "not both"),
    ],
)
def test_bad_values_name_where_they_came_from(
    args: list[str], env: dict[str, str], expected: str
) -> None:
    out = CliRunner().invoke(serve, args, env=env)
    assert out.exit_code == 2 and expected in out.output, out.output


def test_pier_help_builds_no_setting_options() -> None:
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from pier.cli.main import cli\n"
        "from pier.cli.serve_cmd import serve\n"
        "assert CliRunner().invoke(cli, ['--help']).exit_code == 0\n"
        "print(len(serve.params), 'pier.config' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["0", "False"]
