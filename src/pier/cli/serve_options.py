"""``pier serve``'s options, generated from ServerSettings: the one place a setting is defined.

An option the user did not give is not passed on, so ServerSettings fills it from the
``PIER_*`` environment, then from its default: command line > environment > default.
Nothing here imports pydantic until the options are built.
"""

from __future__ import annotations

import sys
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from pydantic import ValidationError
    from pydantic.fields import FieldInfo

    from pier.config import ServerSettings

ENV_PREFIX = "PIER_"
# Flags whose names are not their field's: pydantic reserves ``model_config``, and
# ``--load-model`` names one model each time it is given.
FLAG_NAMES = {"model_config_file": "--model-config", "load_models": "--load-model"}
METAVARS = {
    "model_repository": "DIR|URI",
    "model": "NAME=URI",
    "model_config_file": "FILE",
    "cache_dir": "DIR",
    "load_models": "NAME",
}
# The two ways to say what to serve are one choice: either one on the command line
# replaces whatever the environment says about the other.
SOURCES = ("model_repository", "model")


def flag_of(name: str) -> str:
    """The command-line flag of a ServerSettings field."""
    return FLAG_NAMES.get(name, "--" + name.replace("_", "-"))


def env_of(name: str) -> str:
    """The environment variable of a ServerSettings field."""
    return ENV_PREFIX + name.upper()


class SettingOption(click.Option):
    """The option of one field; its default and variable are shown, never applied, here."""

    def __init__(self, decls: list[str], *, env: str, shown: str | None, **kwargs: Any) -> None:
        super().__init__(decls, default=None, show_default=False, **kwargs)
        self.env = env
        self.shown = shown

    def get_help_extra(self, ctx: click.Context) -> click.types.OptionHelpExtra:
        extra = super().get_help_extra(ctx)
        extra["envvars"] = (self.env,)
        if self.shown is not None:
            extra["default"] = self.shown
        return extra


def _bounds(field: FieldInfo) -> dict[str, Any]:
    """IntRange/FloatRange arguments from the field's ge/gt/le/lt constraints."""
    bounds: dict[str, Any] = {}
    for item in field.metadata:
        for attr, key, is_open in (("ge", "min", False), ("gt", "min", True),
                                   ("le", "max", False), ("lt", "max", True)):  # fmt: skip
            if getattr(item, attr, None) is not None:
                bounds[key] = getattr(item, attr)
                bounds[f"{key}_open"] = is_open
    return bounds


def _option_kwargs(name: str, field: FieldInfo) -> dict[str, Any]:
    """How click reads one field's value: its type, and whether it is a flag or repeats."""
    kind: Any = field.annotation
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        kind = next(a for a in typing.get_args(kind) if a is not type(None))
    if typing.get_origin(kind) is list:
        (item,) = typing.get_args(kind)
        return {**_option_kwargs(name, _item_field(item)), "multiple": True}
    if typing.get_origin(kind) is typing.Literal:
        return {"type": click.Choice([str(a) for a in typing.get_args(kind)])}
    if kind is bool:
        return {"is_flag": True}
    if kind is int:
        return {"type": click.IntRange(**_bounds(field)), "metavar": "INTEGER"}
    if kind is float:
        return {"type": click.FloatRange(**_bounds(field)), "metavar": "NUMBER"}
    if kind is str:
        return {"type": click.STRING}
    if kind is Path:
        return {"type": click.Path(path_type=Path)}
    raise TypeError(f"ServerSettings.{name}: no command-line form for {field.annotation!r}")


def _item_field(item: Any) -> FieldInfo:
    from pydantic.fields import FieldInfo

    return FieldInfo(annotation=item)


def _shown_default(name: str, field: FieldInfo) -> str | None:
    """The default as help shows it; None when there is nothing worth showing."""
    value = field.get_default(call_default_factory=True)
    if value is None or value in ("", []):
        return None
    if isinstance(value, bool):
        flag = flag_of(name).removeprefix("--")
        return flag if value else f"no-{flag}"
    if isinstance(value, Path):
        home = Path.home()
        return f"~/{value.relative_to(home)}" if value.is_relative_to(home) else str(value)
    return str(value)


def setting_options() -> list[click.Option]:
    """One option per ServerSettings field, in the order the fields are declared."""
    from pier.config import ServerSettings

    options: list[click.Option] = []
    for name, field in ServerSettings.model_fields.items():
        kwargs = _option_kwargs(name, field)
        flag = flag_of(name)
        decl = f"{flag}/--no-{flag.removeprefix('--')}" if kwargs.get("is_flag") else flag
        options.append(
            SettingOption(
                [decl, name],
                env=env_of(name),
                shown=_shown_default(name, field),
                help=field.description,
                **{"metavar": METAVARS.get(name), **kwargs},
            )
        )
    return options


def settings_from(given: dict[str, Any]) -> ServerSettings:
    """ServerSettings from the options given on the command line, the environment and defaults.

    Exits with status 2 and one line per problem, naming the flag or the variable it came from.
    """
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from pier.config import ServerSettings

    values: dict[str, Any] = {k: list(v) if isinstance(v, tuple) else v for k, v in given.items()}
    if any(source in given for source in SOURCES):
        for source in SOURCES:
            values.setdefault(source, "")
        if "model" not in given:
            values.setdefault("model_config_file", None)
    try:
        return ServerSettings(**values)
    except ValidationError as exc:
        for line in problems(exc, set(given)):
            click.echo(f"error: {line}", err=True)
    except SettingsError as exc:
        click.echo(f"error: {exc}", err=True)
    sys.exit(2)


def problems(exc: ValidationError, given: set[str]) -> Iterator[str]:
    """Each error of ``exc``, led by the flag or the variable the bad value came from."""
    for err in exc.errors():
        message = err["msg"].removeprefix("Value error, ")
        if not err["loc"]:
            yield message
            continue
        name = str(err["loc"][0])
        yield f"{flag_of(name) if name in given else env_of(name)}: {message}"
