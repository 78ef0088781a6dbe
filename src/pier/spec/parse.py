"""Turning spec data or spec files (JSON or YAML, Pier or EAS form) into a validated ServiceSpec."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn

import yaml
from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from pier.errors import SpecError
from pier.spec.eas import EasTranslation, Loc, is_eas_form, translate
from pier.spec.service import (
    Batching,
    PythonCode,
    Resources,
    ServiceSpec,
    VersionPolicySpec,
    shown,
    suggest,
)

TOP = "(top level)"
_TOO_DEEP = "nested too deeply to be a spec"


@dataclass(frozen=True)
class ParsedSpec:
    """A valid spec, the form it was written in, and warnings about keys Pier ignored."""

    spec: ServiceSpec
    form: Literal["pier", "eas"]
    warnings: list[str] = field(default_factory=list)


def parse_spec(data: Any, where: str = "spec") -> ParsedSpec:
    """Validate already-loaded spec data; raise SpecError listing every problem found."""
    if not isinstance(data, Mapping):
        kind = "nothing" if data is None else type(data).__name__
        _raise(where, [(TOP, f"expected a mapping of spec fields, got {kind}")])
    if is_eas_form(data):
        eas = translate(data)
        spec, problems = _validate(eas.data, eas)
        problems = eas.problems + problems
        if problems or spec is None:
            return _raise(where, problems)
        return ParsedSpec(spec, "eas", eas.warnings)
    spec, problems = _validate(dict(data), None)
    if problems or spec is None:
        return _raise(where, problems)
    return ParsedSpec(spec, "pier", [])


def load_spec_bytes(raw: bytes, filename: str) -> ParsedSpec:
    """Read a JSON or YAML spec file's bytes (chosen by extension) and validate it."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        _raise_file(filename, f"byte {exc.start}", "not UTF-8 text")
    lower = filename.lower()
    if lower.endswith(".json"):
        data = _load_json(text, filename)
    elif lower.endswith((".yaml", ".yml")):
        data = _load_yaml(text, filename)
    else:
        try:
            data = json.loads(text)
        except ValueError:
            data = _load_yaml(text, filename)
        except RecursionError:
            _raise_file(filename, TOP, _TOO_DEEP)
    return parse_spec(data, filename)


def _load_json(text: str, filename: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        _raise_file(filename, f"line {exc.lineno}, column {exc.colno}", f"invalid JSON: {exc.msg}")
    except RecursionError:
        _raise_file(filename, TOP, _TOO_DEEP)


def _load_yaml(text: str, filename: str) -> Any:
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else TOP
        reason = exc.problem or exc.context or "cannot be parsed"
        _raise_file(filename, where, f"invalid YAML: {reason}")
    except yaml.YAMLError as exc:
        _raise_file(filename, TOP, f"invalid YAML: {exc}")
    except RecursionError:
        _raise_file(filename, TOP, _TOO_DEEP)


def _raise_file(filename: str, where: str, message: str) -> NoReturn:
    raise SpecError(f"{filename}: {where}: {message}", [(where, message)])


def _raise(where: str, problems: list[tuple[str, str]]) -> NoReturn:
    listed = "; ".join(f"{path}: {msg}" for path, msg in problems)
    raise SpecError(f"{where}: {len(problems)} problem(s): {listed}", problems)


def _validate(
    data: dict[str, Any], eas: EasTranslation | None
) -> tuple[ServiceSpec | None, list[tuple[str, str]]]:
    try:
        return ServiceSpec.model_validate(data), []
    except ValidationError as exc:
        problems: list[tuple[str, str]] = []
        seen: set[str] = set()
        for err in exc.errors():
            loc = tuple(str(p) for p in err["loc"] if p != "[key]")
            if eas is not None and _under(loc, eas.poisoned):
                continue
            path = _eas_path(loc, eas) if eas is not None else _pier_path(err)
            if path in seen:  # a union reports once per branch; one line is enough
                continue
            seen.add(path)
            message = _unknown_field(loc) if err["type"] == "extra_forbidden" else _message(err)
            problems.append((path, message))
        return None, problems


#: The spec's nested mappings, by where they sit: what an unknown field there could have meant.
_MODELS: dict[Loc, type[BaseModel]] = {
    (): ServiceSpec,
    ("resources",): Resources,
    ("batching",): Batching,
    ("version_policy",): VersionPolicySpec,
    ("code",): PythonCode,
}


def _unknown_field(loc: Loc) -> str:
    name = loc[-1] if loc else ""
    model = _MODELS.get(loc[:-1])
    return f"unknown field {shown(name)}" + (suggest(name, model.model_fields) if model else "")


def _under(loc: Loc, prefixes: set[Loc]) -> bool:
    return any(loc[: len(p)] == p for p in prefixes)


def _pier_path(err: ErrorDetails) -> str:
    path = ""
    for part in err["loc"]:
        if part == "[key]":
            continue
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path or TOP


def _eas_path(loc: Loc, eas: EasTranslation) -> str:
    # The longest Pier prefix with a known EAS origin, then whatever lies below it.
    for cut in range(len(loc), 0, -1):
        origin = eas.origins.get(loc[:cut])
        if origin is not None:
            return ".".join([origin, *loc[cut:]])
    return ".".join(loc) or TOP


_TYPE_WORDS = {
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be a whole number",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "string_type": "must be a string",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "dict_type": "must be a mapping",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "list_type": "must be a list",
    "missing": "is required",
}
_BOUNDS = {
    "greater_than_equal": ("ge", ">="),
    "greater_than": ("gt", ">"),
    "less_than_equal": ("le", "<="),
    "less_than": ("lt", "<"),
}


def _message(err: ErrorDetails) -> str:
    kind = err["type"]
    if kind in _TYPE_WORDS:
        return _TYPE_WORDS[kind]
    if kind == "too_long":
        return f"must have at most {err.get('ctx', {}).get('max_length')} items"
    if kind in _BOUNDS:
        key, sign = _BOUNDS[kind]
        bound = err.get("ctx", {}).get(key)
        if isinstance(bound, float) and bound.is_integer():
            bound = int(bound)
        return f"must be {sign} {bound}"
    return err["msg"].removeprefix("Value error, ")
