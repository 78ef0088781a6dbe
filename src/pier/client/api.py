"""``PierClient``: the management API (``/api/v1``) and inference through the gateway."""

from __future__ import annotations

import builtins
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Literal
from urllib.parse import quote

from pier import __version__
from pier.client.transport import Response, Transport, TransportError
from pier.errors import ConfigError, ErrorCode, PierError
from pier.home import PierHome, default_home

API_PREFIX = "/api/v1"
InferProtocol = Literal["auto", "tfserving", "v2"]


class PierAPIError(PierError):
    """The API answered with an error, or could not be reached (``status`` 0)."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        code: str,
        problems: list[tuple[str, str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        try:
            self.code = ErrorCode(code)
        except ValueError:  # a code this client does not know (a newer server)
            self.code = ErrorCode.INTERNAL
        self.problems = problems or []


class PierConnectionError(PierAPIError):
    """Nothing answered at the API's address (or it answered too slowly)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, status=0, code="unavailable")


class WaitTimeout(PierError):
    """A service did not reach its desired ready count in time; ``document`` is its last state."""

    code = ErrorCode.DEADLINE_EXCEEDED

    def __init__(self, message: str, document: dict[str, Any]) -> None:
        super().__init__(message)
        self.document = document


class ServiceFailed(WaitTimeout):
    """The revision being waited for cannot start: each of its replicas fails the same way.

    Its replicas keep retrying with backoff (the cause may go away), but waiting longer
    would only repeat the failure; ``document`` is the service's last state.
    """

    code = ErrorCode.FAILED_PRECONDITION


class PierClient:
    """Synchronous client of a Pier control plane: manage services, read logs, send predictions."""

    def __init__(self, api_url: str, token: str, timeout: float = 30) -> None:
        self.api_url = api_url.rstrip("/")
        self._token = token
        headers = {"Authorization": f"Bearer {token}", "User-Agent": f"pier/{__version__}"}
        self._http = Transport(self.api_url + API_PREFIX, headers, timeout)
        self._gateway: str | None = None

    @classmethod
    def from_env(cls, home: Path | None = None, timeout: float = 30) -> PierClient:
        """A client for PIER_API + PIER_TOKEN when set, else for the `pier up` of the home folder."""
        api = os.environ.get("PIER_API")
        token = os.environ.get("PIER_TOKEN")
        pier_home = PierHome(home or default_home())
        if not api:
            api = str(pier_home.read_address()["api"])
        if not token:
            token = pier_home.read_token()
        return cls(api, token, timeout)

    def close(self) -> None:
        """Close the HTTP connections."""
        self._http.close()

    def __enter__(self) -> PierClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # -- services ---------------------------------------------------------------------------

    def info(self) -> dict[str, Any]:
        """Version, gateway URL and store kind of the control plane."""
        return self._json("GET", "/info")

    def create(self, spec: dict[str, Any]) -> dict[str, Any]:
        """Create a service from a spec (Pier or EAS form); returns its document."""
        return self._json("POST", "/services", json_body=spec)

    def get(self, name: str) -> dict[str, Any]:
        """A service's full document: status, spec, endpoints, replicas, recent events."""
        return self._json("GET", f"/services/{_q(name)}")

    def list(self) -> builtins.list[dict[str, Any]]:
        """Every service, in short form."""
        services: builtins.list[dict[str, Any]] = self._json("GET", "/services")["services"]
        return services

    def update(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        """Store a new revision of a service (``changed`` is false when the spec is the same)."""
        return self._json("PUT", f"/services/{_q(name)}", json_body=spec)

    def delete(self, name: str) -> dict[str, Any]:
        """Delete a service."""
        return self._json("DELETE", f"/services/{_q(name)}")

    def scale(self, name: str, replicas: int) -> dict[str, Any]:
        """Set a service's desired replica count."""
        return self._json("POST", f"/services/{_q(name)}/scale", json_body={"replicas": replicas})

    def stop(self, name: str) -> dict[str, Any]:
        """Stop a service's replicas (the desired count is kept)."""
        return self._json("POST", f"/services/{_q(name)}/stop")

    def start(self, name: str) -> dict[str, Any]:
        """Start a stopped service again."""
        return self._json("POST", f"/services/{_q(name)}/start")

    def revisions(self, name: str) -> builtins.list[dict[str, Any]]:
        """Every revision of a service, oldest first."""
        revisions: builtins.list[dict[str, Any]] = self._json(
            "GET", f"/services/{_q(name)}/revisions"
        )["revisions"]
        return revisions

    def revision(self, name: str, number: int) -> dict[str, Any]:
        """One revision of a service."""
        return self._json("GET", f"/services/{_q(name)}/revisions/{number}")

    def replicas(self, name: str) -> builtins.list[dict[str, Any]]:
        """A service's replicas as last observed."""
        replicas: builtins.list[dict[str, Any]] = self._json(
            "GET", f"/services/{_q(name)}/replicas"
        )["replicas"]
        return replicas

    def events(self, name: str, limit: int = 100, after: int = 0) -> builtins.list[dict[str, Any]]:
        """A service's events with id > ``after``, oldest first, at most ``limit``."""
        params = {"limit": limit, "after": after}
        events: builtins.list[dict[str, Any]] = self._json(
            "GET", f"/services/{_q(name)}/events", params=params
        )["events"]
        return events

    def logs(
        self, name: str, tail: int = 100, follow: bool = False, replica: str | None = None
    ) -> Iterator[str]:
        """Log lines (without newlines) of a service's replicas; with ``follow``, until closed."""
        params: dict[str, Any] = {"tail": tail, "follow": follow}
        if replica is not None:
            params["replica"] = replica
        read_timeout = None if follow else self._http.timeout
        try:
            head, lines = self._http.stream_lines(
                f"/services/{_q(name)}/logs", params, read_timeout
            )
            if head.is_error:
                raise _api_error(head)
            try:
                yield from lines
            finally:
                lines.close()
        except TransportError as exc:
            raise _unreachable(exc) from None

    def wait(
        self,
        name: str,
        timeout: float = 300,
        interval: float = 1.0,
        progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until the service runs its desired replicas; WaitTimeout with the reason if not."""
        deadline = time.monotonic() + timeout
        while True:
            doc = self.get(name)
            if progress is not None:
                progress(doc)
            if _settled(doc):
                return doc
            if _all_failed(doc):
                raise ServiceFailed(_failed_message(name, doc), doc)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(
                    f"service '{name}' not ready after {timeout:g}s "
                    f"({doc['ready']}/{doc['replicas']} ready, {doc['status']}): "
                    f"{failure_reason(doc)}",
                    doc,
                )
            time.sleep(min(interval, remaining))

    # -- inference --------------------------------------------------------------------------

    def predict(
        self, name: str, body: dict[str, Any], protocol: InferProtocol = "auto"
    ) -> dict[str, Any]:
        """Send one inference request through the gateway; ``auto`` picks the protocol from the body."""
        if protocol == "auto":
            protocol = guess_protocol(body)
        if self._gateway is None:
            self._gateway = str(self.info()["gateway"]).rstrip("/")
        if protocol == "v2":
            url = f"{self._gateway}/v2/models/{_q(name)}/infer"
        else:
            url = f"{self._gateway}/v1/models/{_q(name)}:predict"
        return self._json("POST", url, json_body=body)

    # -- plumbing ---------------------------------------------------------------------------

    def _json(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, **kwargs)
        except TransportError as exc:
            raise _unreachable(exc) from None
        if response.is_error:
            raise _api_error(response)
        try:
            data = response.json()
        except ValueError:
            raise PierAPIError(
                f"{method} {response.url} answered {response.status} with a body that is "
                "not JSON; is this a Pier API?",
                status=response.status,
                code="internal",
            ) from None
        if not isinstance(data, dict):
            raise PierAPIError(
                f"{method} {response.url} answered with JSON that is not an object",
                status=response.status,
                code="internal",
            )
        return data


def _q(name: str) -> str:
    """A name as one path segment: '/', '?' or '#' in it cannot change which URL is asked."""
    return quote(name, safe="")


def _unreachable(exc: TransportError) -> PierError:
    """The error for a request that got no answer, in words that say what to check."""
    if exc.kind == "connect":
        return PierConnectionError(
            f"cannot reach the Pier API at {exc.url} ({exc}); is `pier up` running? "
            "(start it with `pier up`, or set --api / PIER_API)"
        )
    if exc.kind == "timeout":
        return PierConnectionError(f"the Pier API at {exc.url} did not answer in time ({exc})")
    if exc.kind == "url":
        return ConfigError(f"invalid API URL {exc.url!r}: {exc}")
    return PierConnectionError(f"talking to the Pier API at {exc.url} failed: {exc}")


def _api_error(response: Response) -> PierAPIError:
    """The PierAPIError an error response describes (or a generic one for non-Pier bodies)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        problems = [
            (str(p.get("path", "")), str(p.get("message", "")))
            for p in body.get("problems") or []
            if isinstance(p, dict)
        ]
        return PierAPIError(
            body["error"],
            status=response.status,
            code=str(body.get("code", "internal")),
            problems=problems,
        )
    text = response.text.strip()[:200] or response.reason
    return PierAPIError(
        f"{response.method} {response.url} answered {response.status}: {text}",
        status=response.status,
        code="internal" if response.status >= 500 else "invalid_argument",
    )


def guess_protocol(body: dict[str, Any]) -> Literal["tfserving", "v2"]:
    """v2 when ``inputs`` is a list of named tensors (Open Inference Protocol), else TF Serving."""
    inputs = body.get("inputs")
    if (
        isinstance(inputs, list)
        and inputs
        and all(isinstance(i, dict) and "datatype" in i for i in inputs)
    ):
        return "v2"
    return "tfserving"


def _settled(doc: dict[str, Any]) -> bool:
    return bool(
        doc["status"] == "stopped"
        or (doc["status"] == "running" and doc["ready"] >= doc["replicas"])
    )


def _current(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The replicas of the service's current revision that are not gone."""
    return [
        r
        for r in doc.get("replica_list", [])
        if r["revision"] == doc["revision"] and r["state"] != "stopped"
    ]


def _all_failed(doc: dict[str, Any]) -> bool:
    """Whether every replica of the current revision has failed for good (none ready).

    "For good": state ``failed``, or flagged ``permanent`` by the orchestrator (it failed
    the same way on each start and never served).
    """
    current = _current(doc)
    return bool(current) and all(
        r["state"] == "failed"
        or (r["state"] != "ready" and (r.get("extra") or {}).get("permanent"))
        for r in current
    )


def _failed_message(name: str, doc: dict[str, Any]) -> str:
    revision = doc["revision"]
    message = f"service '{name}' revision {revision} cannot start: {failure_reason(doc)}"
    serving = sorted({r["revision"] for r in doc.get("replica_list", []) if r["state"] == "ready"})
    if serving:
        listed = ", ".join(str(n) for n in serving)
        message += f"; revision {listed} keeps serving"
    return message + (
        f". Its replicas keep retrying; fix the spec and run `pier update {name} FILE`, "
        f"or `pier delete {name}`"
    )


def failure_reason(doc: dict[str, Any]) -> str:
    """Why a service is not ready, in words: its replicas' last errors, else its state.

    The current revision's replicas come first; one line per distinct reason.
    """
    replicas = sorted(
        doc.get("replica_list", []), key=lambda r: (r["revision"] != doc.get("revision"), r["id"])
    )
    reasons: list[str] = []
    seen: set[str] = set()
    for r in replicas:
        if not r.get("reason") or r["state"] == "ready" or r["reason"] in seen:
            continue
        seen.add(r["reason"])
        reasons.append(f"replica {r['id']} {r['state']}: {r['reason']}")
    if reasons:
        return "; ".join(reasons)
    for event in reversed(doc.get("events", [])):
        if event["kind"] in ("replica_exited", "replica_oom_killed", "reconcile_failed"):
            return f"{event['kind']}: {event['message']}"
    if not doc.get("replica_list"):
        return "no replica has started yet (is the controller running?)"
    return "replicas are still starting"
