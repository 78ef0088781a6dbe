"""``pier``: the root command, which imports a subcommand's module only when that subcommand runs.

`pier --help` and `pier list` must answer in a blink, so nothing here imports the planes,
pydantic, httpx or the web stack: the table below knows each command's module and short help,
and a test checks it against the commands themselves.
"""

from __future__ import annotations

import importlib
from typing import Any, NamedTuple

import click

import pier


class Entry(NamedTuple):
    """Where a subcommand lives and what ``pier --help`` says of it."""

    module: str
    attribute: str
    help: str
    section: str


#: Every subcommand, in the order `pier --help` shows them within their sections.
COMMANDS: dict[str, Entry] = {
    "serve": Entry(
        "pier.cli.serve_cmd",
        "serve",
        "Serve every model in a model repository (or one model) over HTTP and gRPC.",
        "Model server",
    ),
    "models": Entry("pier.cli.models_cmd", "models", "Model repository tools.", "Model server"),
    "up": Entry(
        "pier.cli.up",
        "up_command",
        "Run the platform on this machine: gateway, management API and replicas.",
        "Platform",
    ),
    "spec": Entry(
        "pier.cli.spec_cmd",
        "spec",
        "Check service specs (Pier or PAI-EAS form) and print their schema.",
        "Platform",
    ),
    "create": Entry(
        "pier.cli.service_cmds",
        "create",
        "Create a service from a spec FILE (JSON or YAML, Pier or EAS form).",
        "Services",
    ),
    "update": Entry(
        "pier.cli.service_cmds",
        "update",
        "Roll service NAME to a new revision from a spec FILE.",
        "Services",
    ),
    "scale": Entry(
        "pier.cli.service_cmds",
        "scale",
        "Set the desired replica count of service NAME (0..64).",
        "Services",
    ),
    "stop": Entry(
        "pier.cli.service_cmds",
        "stop",
        "Stop every replica of service NAME (its desired count is kept).",
        "Services",
    ),
    "start": Entry(
        "pier.cli.service_cmds",
        "start",
        "Run service NAME's replicas again after `pier stop`.",
        "Services",
    ),
    "delete": Entry(
        "pier.cli.service_cmds",
        "delete",
        "Delete service NAME, its revisions and its replicas.",
        "Services",
    ),
    "predict": Entry(
        "pier.cli.predict_cmd",
        "predict",
        "Send one inference request to service NAME through the gateway and print the answer.",
        "Services",
    ),
    "list": Entry("pier.cli.inspect_cmds", "list_", "List every service.", "Inspect"),
    "describe": Entry(
        "pier.cli.inspect_cmds",
        "describe",
        "Show a service in full: status, spec, endpoints, replicas, recent events.",
        "Inspect",
    ),
    "logs": Entry(
        "pier.cli.logs_cmd", "logs", "Print the log lines of service NAME's replicas.", "Inspect"
    ),
    "events": Entry(
        "pier.cli.inspect_cmds",
        "events",
        "Show the newest events of service NAME, oldest first.",
        "Inspect",
    ),
    "revisions": Entry(
        "pier.cli.inspect_cmds",
        "revisions",
        "List the revisions of service NAME (* marks the current one).",
        "Inspect",
    ),
}


class LazyGroup(click.Group):
    """A group that loads a subcommand's module when the subcommand is asked for, not before."""

    def __init__(self, *args: Any, lazy: dict[str, Entry], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [*self.lazy, *(name for name in super().list_commands(ctx) if name not in self.lazy)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        entry = self.lazy.get(cmd_name)
        if entry is None or cmd_name in self.commands:
            return super().get_command(ctx, cmd_name)
        command = getattr(importlib.import_module(entry.module), entry.attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{entry.module}.{entry.attribute} is not a click command")
        self.add_command(command, cmd_name)
        return command

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        # click suggests close names from the commands it holds; a lazy group holds few yet.
        name = click.utils.make_str(args[0])
        unknown = self.get_command(ctx, name) is None
        if unknown and not name.startswith("-") and not ctx.resilient_parsing:
            raise click.exceptions.NoSuchCommand(
                name, possibilities=self.list_commands(ctx), ctx=ctx
            )
        return super().resolve_command(ctx, args)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # The short help comes from the table, so `pier --help` imports no command module.
        names = self.list_commands(ctx)
        if not names:
            return
        width = max(len(name) for name in names)
        limit = formatter.width - 6 - width
        sections: dict[str, list[tuple[str, str]]] = {}
        for name in names:
            entry = self.lazy.get(name)
            command: click.Command | None
            if entry is not None and name not in self.commands:
                command = click.Command(name, help=entry.help)  # a stand-in: same wording rules
            else:
                command = self.get_command(ctx, name)
            if command is None or command.hidden:
                continue
            section = entry.section if entry is not None else "Other commands"
            # Padded names keep the help column aligned across sections.
            row = (name.ljust(width), command.get_short_help_str(limit))
            sections.setdefault(section, []).append(row)
        for section, rows in sections.items():
            with formatter.section(section):
                formatter.write_dl(rows)


@click.group(
    cls=LazyGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(
    pier.__version__, "--version", prog_name="pier", message="%(prog)s %(version)s"
)
def cli() -> None:
    """Pier: production inference for ONNX, scikit-learn, XGBoost, LightGBM, PyTorch and Python models."""


def main() -> None:
    cli(prog_name="pier")


if __name__ == "__main__":
    main()
