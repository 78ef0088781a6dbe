"""``pier create | list | describe | update | scale | stop | start | delete | logs | events |
revisions | predict``: the control plane's API from the command line.

Exit codes scripts can trust: 0 ok; 1 the operation failed or timed out; 2 usage error or
invalid spec; 3 not found; 4 the API cannot be reached or refused the token. Messages go to
stderr, data to stdout.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar, cast

import click

from pier.cli.render import (
    age,
    coloured,
    event_table,
    indent,
    print_json,
    replica_table,
    say,
    show_warnings,
    table,
    wait_with_progress,
    when,
)
from pier.errors import ConfigError, PierError, SpecError
from pier.home import PierHome, default_home

if TYPE_CHECKING:  # the client (and httpx) load when a command runs, not for `pier --help`
    from pier.client.api import InferProtocol, PierClient

EXIT_FAILED, EXIT_USAGE, EXIT_NOT_FOUND, EXIT_UNREACHABLE = 1, 2, 3, 4

F = TypeVar("F", bound=Callable[..., Any])


# -- shared options and plumbing ------------------------------------------------------------


def connection_options(f: F) -> F:
    """--home, --api and --token, each with its environment variable."""
    f = click.option(
        "--token",
        envvar="PIER_TOKEN",
        default=None,
        help="Admin token [env PIER_TOKEN; default: the home folder's token file].",
    )(f)
    f = click.option(
        "--api",
        envvar="PIER_API",
        default=None,
        metavar="URL",
        help="API URL [env PIER_API; default: the running `pier up` of --home].",
    )(f)
    return click.option(
        "--home",
        envvar="PIER_HOME",
        default=None,
        type=click.Path(file_okay=False, path_type=Path),
        help="Pier home folder [env PIER_HOME; default ~/.pier].",
    )(f)


def output_option(f: F) -> F:
    """-o/--output table|json."""
    return click.option(
        "-o",
        "--output",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help="json: the API's document, machine-readable.",
    )(f)


def wait_options(f: F) -> F:
    """--wait/--no-wait and --timeout."""
    f = click.option(
        "--timeout",
        type=click.FloatRange(min=0),
        default=300.0,
        show_default=True,
        help="Seconds --wait waits for the replicas.",
    )(f)
    return click.option(
        "--wait/--no-wait",
        default=True,
        show_default=True,
        help="Wait until the desired replicas are ready.",
    )(f)


def _client(home: Path | None, api: str | None, token: str | None) -> PierClient:
    from pier.client.api import PierClient

    pier_home = PierHome(home or default_home())
    if not api:
        api = str(pier_home.read_address()["api"])
    if not token:
        token = pier_home.read_token()
    return PierClient(api, token)


@contextlib.contextmanager
def _session(home: Path | None, api: str | None, token: str | None) -> Iterator[PierClient]:
    """A client whose errors end the command with the right exit code and message."""
    with _exit_on_error():
        client = _client(home, api, token)
        try:
            yield client
        finally:
            client.close()


@contextlib.contextmanager
def _exit_on_error() -> Iterator[None]:
    from pier.client.api import PierAPIError, WaitTimeout

    try:
        yield
    except SpecError as exc:
        head = exc.message.split(": ")[0] if exc.problems else exc.message
        _fail(f"invalid spec {head}" if exc.problems else exc.message, exc.problems, EXIT_USAGE)
    except PierAPIError as exc:
        if exc.status == 0 or exc.status in (401, 403):
            _fail(exc.message, [], EXIT_UNREACHABLE)
        if exc.status == 400:
            _fail(exc.message if not exc.problems else "invalid request", exc.problems, EXIT_USAGE)
        if exc.status == 404:
            _fail(exc.message, [], EXIT_NOT_FOUND)
        _fail(exc.message, [], EXIT_FAILED)
    except ConfigError as exc:  # no running `pier up` found, no token
        _fail(exc.message, [], EXIT_UNREACHABLE)
    except WaitTimeout as exc:
        _fail(exc.message, [], EXIT_FAILED)
    except PierError as exc:
        _fail(exc.message, [], EXIT_FAILED)


def _fail(message: str, problems: Sequence[tuple[str, str]], code: int) -> NoReturn:
    click.echo(f"error: {message}" + (":" if problems else ""), err=True)
    for path, problem in problems:
        click.echo(f"  {path}: {problem}", err=True)
    sys.exit(code)


def _load_spec(file: Path) -> dict[str, Any]:
    """The spec file as Pier-form JSON, local model paths made absolute against its folder."""
    from pier.spec import load_spec_bytes, resolve_local_paths

    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise click.FileError(str(file), exc.strerror) from None
    parsed = load_spec_bytes(raw, str(file))
    for warning in parsed.warnings:
        say(f"warning: {warning}")
    spec = resolve_local_paths(parsed.spec, file.resolve().parent)
    return spec.model_dump(mode="json")


# -- commands -------------------------------------------------------------------------------


@click.command("create")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@wait_options
@connection_options
def create(
    file: Path, wait: bool, timeout: float, home: Path | None, api: str | None, token: str | None
) -> None:
    """Create a service from a spec FILE (JSON or YAML, Pier or EAS form)."""
    with _session(home, api, token) as client:
        doc = client.create(_load_spec(file))
        show_warnings(doc)
        name = doc["name"]
        say(f"created service {name} (revision {doc['revision']}, {doc['replicas']} replica(s))")
        for protocol, url in doc["endpoints"].items():
            say(f"  {protocol:9}  {url}")
        if wait:
            wait_with_progress(client, name, timeout)


@click.command("list")
@output_option
@connection_options
def list_(output: str, home: Path | None, api: str | None, token: str | None) -> None:
    """List every service."""
    with _session(home, api, token) as client:
        services = client.list()
    if output == "json":
        print_json({"services": services})
        return
    if not services:
        say("no services; create one with `pier create SPEC_FILE`")
        return
    rows = [
        [
            s["name"],
            s["status"],
            f"{s['ready']}/{s['replicas']}",
            s["revision"],
            age(s["created_at"]),
        ]
        for s in services
    ]
    click.echo(table(["NAME", "STATUS", "READY", "REVISION", "AGE"], rows, state_col=1))


@click.command("describe")
@click.argument("name")
@output_option
@connection_options
def describe(name: str, output: str, home: Path | None, api: str | None, token: str | None) -> None:
    """Show a service in full: status, spec, endpoints, replicas, recent events."""
    with _session(home, api, token) as client:
        doc = client.get(name)
    if output == "json":
        print_json(doc)
        return
    spec = doc["spec"]
    status = coloured(doc["status"], doc["status"])
    fields = [
        ("Name", doc["name"]),
        ("Status", f"{status} ({doc['ready']}/{doc['replicas']} ready)"),
        ("Revision", doc["revision"]),
        ("Model", spec.get("model", "")),
        ("Processor", spec.get("processor") or "(inferred)"),
        ("Created", f"{when(doc['created_at'])} ({age(doc['created_at'])} ago)"),
        ("Updated", f"{when(doc['updated_at'])} ({age(doc['updated_at'])} ago)"),
    ]
    res = spec.get("resources") or {}
    asked = ", ".join(
        f"{k} {res[k]}{' MiB' if k == 'memory' else ''}"
        for k in ("cpu", "memory", "gpu")
        if res.get(k)
    )
    fields.append(("Resources", asked or "no limits asked"))
    enforced = sorted({r["limits"] for r in doc.get("replica_list", []) if r.get("limits")})
    if enforced:
        fields.append(("Enforced", "; ".join(enforced)))
    for label, value in fields:
        click.echo(f"{label + ':':11} {value}")
    click.echo("Endpoints:")
    for protocol, url in doc["endpoints"].items():
        click.echo(f"  {protocol:9}  {url}")
    replicas = doc.get("replica_list", [])
    click.echo("Replicas:" + ("" if replicas else " none"))
    if replicas:
        click.echo(indent(replica_table(replicas)))
    events = doc.get("events", [])
    click.echo("Events:" + ("" if events else " none"))
    if events:
        click.echo(indent(event_table(events)))


@click.command("update")
@click.argument("name")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@wait_options
@connection_options
def update(
    name: str,
    file: Path,
    wait: bool,
    timeout: float,
    home: Path | None,
    api: str | None,
    token: str | None,
) -> None:
    """Roll service NAME to a new revision from a spec FILE."""
    with _session(home, api, token) as client:
        spec = _load_spec(file)
        if spec["name"] != name:
            _fail(f"{file} describes service '{spec['name']}', not '{name}'", [], EXIT_USAGE)
        doc = client.update(name, spec)
        show_warnings(doc)
        if doc["changed"]:
            say(f"updated service {name} to revision {doc['revision']}")
        else:
            say(f"no change: service {name} already runs this spec (revision {doc['revision']})")
        if wait:
            wait_with_progress(client, name, timeout)


@click.command("scale")
@click.argument("name")
@click.argument("replicas", type=click.IntRange(0, 64))
@wait_options
@connection_options
def scale(
    name: str,
    replicas: int,
    wait: bool,
    timeout: float,
    home: Path | None,
    api: str | None,
    token: str | None,
) -> None:
    """Set the desired replica count of service NAME (0..64)."""
    with _session(home, api, token) as client:
        doc = client.scale(name, replicas)
        say(f"scaled service {name} to {doc['replicas']} replica(s)")
        if wait:
            wait_with_progress(client, name, timeout)


@click.command("stop")
@click.argument("name")
@connection_options
def stop(name: str, home: Path | None, api: str | None, token: str | None) -> None:
    """Stop every replica of service NAME (its desired count is kept)."""
    with _session(home, api, token) as client:
        client.stop(name)
    say(f"stopped service {name}")


@click.command("start")
@click.argument("name")
@connection_options
def start(name: str, home: Path | None, api: str | None, token: str | None) -> None:
    """Run service NAME's replicas again after `pier stop`."""
    with _session(home, api, token) as client:
        doc = client.start(name)
    say(f"started service {name} ({doc['replicas']} replica(s))")


@click.command("delete")
@click.argument("name")
@click.option("-y", "--yes", is_flag=True, help="Do not ask for confirmation.")
@connection_options
def delete(name: str, yes: bool, home: Path | None, api: str | None, token: str | None) -> None:
    """Delete service NAME, its revisions and its replicas."""
    if not yes:
        click.confirm(f"delete service {name} and stop its replicas?", abort=True, err=True)
    with _session(home, api, token) as client:
        client.delete(name)
    say(f"deleted service {name}")


@click.command("logs")
@click.argument("name")
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option("--replica", default=None, metavar="ID", help="Only this replica's lines.")
@click.option("--tail", type=click.IntRange(min=0), default=100, show_default=True)
@connection_options
def logs(
    name: str,
    follow: bool,
    replica: str | None,
    tail: int,
    home: Path | None,
    api: str | None,
    token: str | None,
) -> None:
    """Print the log lines of service NAME's replicas."""
    with _session(home, api, token) as client:
        try:
            for line in client.logs(name, tail=tail, follow=follow, replica=replica):
                click.echo(line)
        except KeyboardInterrupt:
            sys.exit(130)


@click.command("events")
@click.argument("name")
@click.option("--limit", type=click.IntRange(1, 1000), default=100, show_default=True)
@output_option
@connection_options
def events(
    name: str, limit: int, output: str, home: Path | None, api: str | None, token: str | None
) -> None:
    """Show the newest events of service NAME, oldest first."""
    with _session(home, api, token) as client:
        found = client.events(name, limit=limit)
    if output == "json":
        print_json({"events": found})
    elif found:
        click.echo(event_table(found))
    else:
        say(f"no events for service {name}")


@click.command("revisions")
@click.argument("name")
@output_option
@connection_options
def revisions(
    name: str, output: str, home: Path | None, api: str | None, token: str | None
) -> None:
    """List the revisions of service NAME (* marks the current one)."""
    with _session(home, api, token) as client:
        found = client.revisions(name)
    if output == "json":
        print_json({"revisions": found})
        return
    current = max((r["revision"] for r in found), default=0)
    rows = [
        [
            f"{r['revision']}{' *' if r['revision'] == current else ''}",
            when(r["created_at"]),
            r["spec"].get("replicas", "-"),
            r["spec"].get("processor") or "-",
            r["spec"].get("model", ""),
        ]
        for r in found
    ]
    click.echo(table(["REVISION", "CREATED", "REPLICAS", "PROCESSOR", "MODEL"], rows))


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
    with _session(home, api, token) as client:
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


#: The commands the main `pier` group registers.
COMMANDS: list[click.Command] = [
    create,
    list_,
    describe,
    update,
    scale,
    stop,
    start,
    delete,
    logs,
    events,
    revisions,
    predict,
]
