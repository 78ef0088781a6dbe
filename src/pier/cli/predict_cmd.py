"""``pier predict``: send one inference request to a service through the gateway."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import click

from pier.cli.options import connection_options
from pier.cli.render import print_json
from pier.cli.session import session

if TYPE_CHECKING:
    from pier.client.api import InferProtocol


@click.command("predict")
@click.argument("name")
@click.option(
    "--data",
    required=True,
    metavar="JSON|@FILE",
    help="The request body: JSON text, or @path to a JSON file (@- reads stdin).",
)
@click.option(
    "--protocol",
    type=click.Choice(["auto", "tfserving", "v2"]),
    default="auto",
    show_default=True,
    help="auto: v2 when 'inputs' lists named tensors, else TF Serving.",
)
@connection_options
def predict(
    name: str, data: str, protocol: str, home: Path | None, api: str | None, token: str | None
) -> None:
    """Send one inference request to service NAME through the gateway and print the answer."""
    body = _request_body(data)
    with session(home, api, token) as client:
        answer = client.predict(name, body, cast("InferProtocol", protocol))
    print_json(answer)


def _request_body(data: str) -> dict[str, Any]:
    if data.startswith("@"):
        source = data[1:]
        try:
            text = sys.stdin.read() if source == "-" else Path(source).read_text()
        except OSError as exc:
            raise click.BadParameter(
                f"cannot read {source}: {exc.strerror}", param_hint="--data"
            ) from None
    else:
        text = data
    try:
        body = json.loads(text)
    except json.JSONDecodeError as exc:
        raise click.BadParameter(
            f"not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            param_hint="--data",
        ) from None
    if not isinstance(body, dict):
        raise click.BadParameter("the request body must be a JSON object", param_hint="--data")
    return body
