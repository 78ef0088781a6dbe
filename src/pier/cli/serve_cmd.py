"""``pier serve``: one model server over a model repository (or one model), no control plane."""

from __future__ import annotations

import sys
from typing import Any

import click
from click.core import ParameterSource

from pier.cli.serve_options import setting_options, settings_from


class ServeCommand(click.Command):
    """A command whose options are built from ServerSettings on first use.

    Building them imports pydantic, so it waits until ``pier serve`` itself parses its
    arguments or prints its help; listing the commands never pays for it.
    """

    def get_params(self, ctx: click.Context) -> list[click.Parameter]:
        if not self.params:
            self.params = list(setting_options())
        return super().get_params(ctx)


def _serve(**values: Any) -> None:
    """Serve every model in a model repository (or one model) over HTTP and gRPC.

    Every option can also be set as the variable shown with it (PIER_<FIELD>); an option
    on the command line wins over the variable.
    """
    ctx = click.get_current_context()
    given = {
        name: value
        for name, value in values.items()
        if ctx.get_parameter_source(name) is ParameterSource.COMMANDLINE
    }
    settings = settings_from(given)
    from pier.serving.server import serve as run

    sys.exit(run(settings))


serve = ServeCommand(
    "serve",
    callback=_serve,
    help=_serve.__doc__,
    short_help="Serve every model in a model repository (or one model) over HTTP and gRPC.",
)
