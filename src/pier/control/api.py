"""The management REST API (``/api/v1``): create, inspect, update, scale and delete services.

``create_api`` builds a FastAPI app over a store and the control plane's hooks. Handlers
are plain ``def`` (the store is synchronous, so FastAPI runs them on its thread pool);
every change calls ``control.wake()`` so the controller reconciles at once.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from fastapi.responses import StreamingResponse

import pier
from pier.control.api_errors import BodyLimit, TokenAuth, install_error_handlers
from pier.control.api_models import (
    ControlHooks,
    ModelCheck,
    ScaleRequest,
    ServiceStore,
    event_doc,
    replica_doc,
    revision_doc,
    service_document,
    service_summary,
)
from pier.control.records import INT64_MAX
from pier.errors import InvalidInput, NotFound, SpecError
from pier.spec import ParsedSpec, parse_spec, spec_digest
from pier.spec.service import shown, suggest

API_PREFIX = "/api/v1"
#: Events a service document carries (the newest); the events endpoint pages through all.
RECENT_EVENTS = 10

_SPEC_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "A service spec as a JSON object, in Pier form or EAS form.",
        "content": {
            "application/json": {
                "schema": {"type": "object"},
                "examples": {
                    "pier": {"value": {"name": "iris", "model": "s3://models/iris", "replicas": 2}},
                    "eas": {
                        "value": {
                            "name": "iris",
                            "processor": "sklearn",
                            "model_path": "oss://models/iris",
                            "metadata": {"instance": 2, "cpu": 1, "memory": 2000},
                        }
                    },
                },
            }
        },
    }
}

ServiceName = Annotated[str, Path(description="Service name.")]


async def spec_body(request: Request) -> dict[str, Any]:
    """The request body as a JSON object, or a 400 saying what is wrong with it."""
    raw = await request.body()
    if not raw.strip():
        raise InvalidInput("request body is empty: send the service spec as a JSON object")
    try:
        data = json.loads(raw, parse_constant=_no_constant)
    except UnicodeDecodeError:
        raise InvalidInput("request body is not UTF-8 text: send the spec as JSON") from None
    except json.JSONDecodeError as exc:
        raise InvalidInput(
            f"request body is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from None
    except ValueError as exc:  # NaN / Infinity
        raise InvalidInput(f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise InvalidInput("request body is nested too deeply") from None
    if not isinstance(data, dict):
        raise InvalidInput(f"the spec must be a JSON object, not {_json_kind(data)}")
    return data


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value")


def _json_kind(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    return "a number"


def _store_kind(store: object) -> str:
    """The store's database kind ("sqlite" or "postgresql"), from what it exposes."""
    for attr in ("database", "url"):
        value = getattr(store, attr, None)
        if isinstance(value, str) and value:
            return "postgresql" if value.startswith("postgres") else "sqlite"
    engine = getattr(store, "engine", None)
    name = getattr(getattr(engine, "dialect", None), "name", "")
    return "postgresql" if str(name).startswith("postgres") else "sqlite"


async def _lines(source: AsyncIterator[str]) -> AsyncIterator[str]:
    """Each log line once, newline-terminated."""
    async for line in source:
        yield line if line.endswith("\n") else line + "\n"


#: Where the EAS form writes what Pier's form calls these paths.
_EAS_PATHS = {"model": "model_path", "code.path": "processor_path"}


def _check_locations(parsed: ParsedSpec, check: ModelCheck | None) -> None:
    """A 400 naming the field when the spec's local model or code cannot be used here."""
    if check is None:
        return
    problems = check(parsed.spec)
    if not problems:
        return
    if parsed.form == "eas":
        problems = [(_EAS_PATHS.get(path, path), message) for path, message in problems]
    listed = "; ".join(f"{path}: {message}" for path, message in problems)
    raise SpecError(f"request body: {len(problems)} problem(s): {listed}", problems)


def create_api(
    store: ServiceStore,
    control: ControlHooks,
    token: str,
    *,
    gateway_url: str,
    check_model: ModelCheck | None = None,
) -> FastAPI:
    """The management API app: every path but ``/api/v1/health`` needs the admin token.

    ``check_model`` looks at a spec's local paths before it is stored (None: not checked).
    """
    app = FastAPI(
        title="Pier management API",
        version=pier.__version__,
        description="Create, inspect, update, scale and delete Pier inference services.",
        openapi_url=f"{API_PREFIX}/openapi.json",
        docs_url=f"{API_PREFIX}/docs",
        redoc_url=None,
    )
    install_error_handlers(app)
    app.add_middleware(BodyLimit)
    kind = _store_kind(store)

    @app.get(f"{API_PREFIX}/health", tags=["meta"])
    def health() -> dict[str, str]:
        """Liveness of the API; needs no token."""
        return {"status": "ok"}

    api = APIRouter(prefix=API_PREFIX, dependencies=[Depends(TokenAuth(token))])

    def _exists(name: str) -> bool:
        try:
            store.get_service(name)
        except NotFound:
            return False
        return True

    def document(name: str) -> dict[str, Any]:
        service = store.get_service(name)
        revision = store.get_revision(name, service.revision)
        replicas = store.list_replicas(name)
        return service_document(
            service, revision, replicas, store.list_events(name, RECENT_EVENTS), gateway_url
        )

    @api.get("/info", tags=["meta"])
    def info() -> dict[str, str]:
        """Pier's version, the gateway's URL and the kind of store."""
        return {"version": pier.__version__, "gateway": gateway_url, "store": kind}

    @api.post("/services", status_code=201, tags=["services"], openapi_extra=_SPEC_BODY)
    def create_service(data: Annotated[dict[str, Any], Depends(spec_body)]) -> dict[str, Any]:
        """Create a service from a spec (Pier or EAS form); revision 1 is stored."""
        parsed = parse_spec(data, "request body")
        spec = parsed.spec
        if not _exists(spec.name):  # a taken name is the 409 to report, whatever the model
            _check_locations(parsed, check_model)
        store.create_service(spec.name, spec.model_dump(mode="json"), spec.replicas)
        control.wake()
        return {**document(spec.name), "warnings": parsed.warnings}

    @api.get("/services", tags=["services"])
    def list_services() -> dict[str, Any]:
        """Every service, in short form."""
        replicas = store.list_replicas()
        return {
            "services": [
                service_summary(s, [r for r in replicas if r.service == s.name])
                for s in sorted(store.list_services(), key=lambda s: s.name)
            ]
        }

    @api.get("/services/{name}", tags=["services"])
    def get_service(name: ServiceName) -> dict[str, Any]:
        """A service in full: status, spec, endpoints, replicas and recent events."""
        return document(name)

    @api.put("/services/{name}", tags=["services"], openapi_extra=_SPEC_BODY)
    def update_service(
        name: ServiceName, data: Annotated[dict[str, Any], Depends(spec_body)]
    ) -> dict[str, Any]:
        """Store a new revision; an identical spec changes nothing (``changed: false``)."""
        parsed = parse_spec(data, "request body")
        spec = parsed.spec
        if spec.name != name:
            raise InvalidInput(
                f"the spec's name '{spec.name}' does not match the service '{name}' in the path"
            )
        service = store.get_service(name)
        _check_locations(parsed, check_model)
        current = parse_spec(store.get_revision(name, service.revision).spec, "stored spec").spec
        changed = spec_digest(spec) != spec_digest(current)
        if changed:
            # The spec's replica count applies when the spec changes it; otherwise the count
            # set by `pier scale` since the last revision stays.
            replicas = spec.replicas if spec.replicas != current.replicas else None
            store.update_service(name, spec.model_dump(mode="json"), replicas)
            control.wake()
        return {**document(name), "changed": changed, "warnings": parsed.warnings}

    @api.delete("/services/{name}", tags=["services"])
    def delete_service(name: ServiceName) -> dict[str, str]:
        """Delete a service: its replicas are drained and stopped, its revisions forgotten."""
        store.delete_service(name)
        control.wake()
        return {"deleted": name}

    @api.post("/services/{name}/scale", tags=["services"])
    def scale_service(name: ServiceName, body: ScaleRequest) -> dict[str, Any]:
        """Set the desired replica count (0..64)."""
        store.set_replicas(name, body.replicas)
        control.wake()
        return document(name)

    @api.post("/services/{name}/stop", tags=["services"])
    def stop_service(name: ServiceName) -> dict[str, Any]:
        """Stop every replica; the desired count is kept for ``start``."""
        store.set_stopped(name, True)
        control.wake()
        return document(name)

    @api.post("/services/{name}/start", tags=["services"])
    def start_service(name: ServiceName) -> dict[str, Any]:
        """Run the desired count of replicas again after ``stop``."""
        store.set_stopped(name, False)
        control.wake()
        return document(name)

    @api.get("/services/{name}/revisions", tags=["revisions"])
    def list_revisions(name: ServiceName) -> dict[str, Any]:
        """Every revision of a service, oldest first."""
        store.get_service(name)
        revisions = sorted(store.list_revisions(name), key=lambda r: r.number)
        return {"revisions": [revision_doc(r) for r in revisions]}

    @api.get("/services/{name}/revisions/{number}", tags=["revisions"])
    def get_revision(
        name: ServiceName, number: Annotated[int, Path(ge=1, description="Revision number.")]
    ) -> dict[str, Any]:
        """One revision of a service, with its spec."""
        return revision_doc(store.get_revision(name, number))

    @api.get("/services/{name}/replicas", tags=["replicas"])
    def list_replicas(name: ServiceName) -> dict[str, Any]:
        """A service's replicas as the controller last observed them."""
        store.get_service(name)
        replicas = sorted(store.list_replicas(name), key=lambda r: r.id)
        return {"replicas": [replica_doc(r) for r in replicas]}

    @api.get("/services/{name}/events", tags=["events"])
    def list_events(
        name: ServiceName,
        limit: Annotated[int, Query(ge=1, le=1000, description="Most events returned.")] = 100,
        after: Annotated[
            int, Query(ge=0, le=INT64_MAX, description="Only events with a larger id.")
        ] = 0,
    ) -> dict[str, Any]:
        """A service's events, oldest first, paged by event id; a deleted service's stay."""
        try:
            store.get_service(name)
        except NotFound:
            if not store.list_events(name, 1):
                raise  # no service of that name ever existed
        return {"events": [event_doc(e) for e in store.list_events(name, limit, after)]}

    @api.get(
        "/services/{name}/logs",
        tags=["replicas"],
        response_class=StreamingResponse,
        responses={200: {"content": {"text/plain": {}}, "description": "Log lines."}},
    )
    def logs(
        name: ServiceName,
        tail: Annotated[int, Query(ge=0, le=100_000, description="Lines of history.")] = 100,
        follow: Annotated[bool, Query(description="Keep streaming new lines.")] = False,
        replica: Annotated[str | None, Query(description="Only this replica's lines.")] = None,
    ) -> StreamingResponse:
        """Log lines of a service's replicas (or one of them), as plain text."""
        store.get_service(name)
        ids = [r.id for r in store.list_replicas(name)]
        if replica is not None and replica not in ids:
            raise NotFound(f"service '{name}' has no replica {shown(replica)}{suggest(replica, ids)}")
        return StreamingResponse(
            _lines(control.logs(name, replica, tail, follow)),
            media_type="text/plain; charset=utf-8",
        )

    app.include_router(api)
    return app
