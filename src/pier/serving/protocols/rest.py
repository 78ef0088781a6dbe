"""One raw ASGI app serving TF Serving REST and Open Inference Protocol REST on one port.

Inference paths are routed by splitting the path, not by walking a framework's
route table: this app is on every request's path.
"""

from __future__ import annotations

import logging
import time

import orjson

from pier.errors import NotFound, PierError
from pier.observe.logs import AccessLog
from pier.observe.metrics import Metrics
from pier.serving.dataplane import DataPlane
from pier.serving.protocols import documents, tfs_http, v2_http
from pier.serving.protocols.http import (
    Receive,
    RequestHeaders,
    Response,
    Scope,
    Send,
    compress,
    error_response,
    http_status,
    json_response,
    read_body,
    send_response,
)
from pier.serving.protocols.v2_http import check_method, parse_model_path
from pier.serving.state import ServerState

log = logging.getLogger(__name__)

PATH_CACHE_SIZE = 4096
MODEL_ACTIONS = frozenset({"", "infer", "ready", "config", "stats"})


class RestApp:
    """The HTTP side of one model server process."""

    def __init__(
        self,
        plane: DataPlane,
        metrics: Metrics,
        state: ServerState,
        max_request_size: int,
        access_log: AccessLog | None,
    ) -> None:
        self.plane = plane
        self.metrics = metrics
        self.state = state
        self.limit = max_request_size
        self.access_log = access_log
        # Parsed model paths, so a request for a known path costs one dict lookup.
        self._model_paths: dict[str, tuple[str, int | None, str]] = {}
        self._tfs_paths: dict[str, tfs_http.TfsPath] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        t0 = time.perf_counter()
        method: str = scope["method"]
        path: str = scope["path"]
        protocol = (
            "v2" if path.startswith("/v2") else "tfserving" if path.startswith("/v1") else "other"
        )
        headers = None
        try:
            headers = RequestHeaders.parse(scope["headers"])
            if protocol == "v2":
                response = await self._v2(method, path, headers, receive)
            elif protocol == "tfserving":
                response = await self._tfserving(method, path, headers, receive)
            else:
                response = self._other(method, path)
        except PierError as exc:
            response = error_response(exc.message, http_status(exc))
        except Exception:
            log.exception("unhandled error on %s %s", method, path)
            response = error_response("internal server error; see the server log", 500)
        if headers is not None and headers.accept_encoding:
            compress(response, headers.accept_encoding)
        await send_response(send, response)
        self.metrics.http_response(protocol, response.status)
        if self.access_log is not None:
            client = scope.get("client")
            self.access_log.write(
                method,
                path,
                response.status,
                time.perf_counter() - t0,
                len(response.body),
                client[0] if client else "",
            )

    # ----- Open Inference Protocol ---------------------------------------------

    async def _v2(
        self, method: str, path: str, headers: RequestHeaders, receive: Receive
    ) -> Response:
        cached = self._model_paths.get(path)
        if cached is None:
            name, version, action = parse_model_path(path)
            if action is not None:
                cached = (name, version, action)
                if action in MODEL_ACTIONS and len(self._model_paths) < PATH_CACHE_SIZE:
                    self._model_paths[path] = cached
        if cached is not None:
            return await self._v2_model(method, *cached, headers, receive)
        parts = path.split("/")
        n = len(parts)
        if n == 2:  # /v2
            check_method(method, "GET")
            return json_response(documents.server_metadata())
        section = parts[2]
        if path == "/v2/models/stats":
            check_method(method, "GET")
            repo = self.plane.repository
            return json_response(
                documents.statistics([s for m in repo.model_names() for s in repo.available(m)])
            )
        if section == "models" and n == 3:
            check_method(method, "GET")
            return json_response({"models": self.plane.repository.model_names()})
        if section == "health" and n == 4:
            check_method(method, "GET")
            if parts[3] == "live":
                return json_response({"live": not self.state.draining})
            if parts[3] == "ready":
                ready = self.ready()
                return json_response({"ready": ready}, 200 if ready else 503)
        if section == "repository":
            return await self._repository(method, parts, headers, receive)
        raise NotFound(f"no route for {method} {path}")

    async def _v2_model(
        self,
        method: str,
        name: str,
        version: int | None,
        action: str,
        headers: RequestHeaders,
        receive: Receive,
    ) -> Response:
        if action == "infer":
            check_method(method, "POST")
            served = self.plane.resolve(name, version)
            t0 = time.perf_counter()
            try:
                body = await read_body(receive, headers, self.limit)
                return await v2_http.infer(self.plane, served, body, headers)
            except PierError as exc:
                self.plane.record_failure(served, "v2", exc, time.perf_counter() - t0)
                raise
        if action == "":
            check_method(method, "GET")
            served = self.plane.resolve(name, version)
            versions = (
                [served.version_str]
                if version is not None
                else [s.version_str for s in self.plane.repository.available(name)]
            )
            return json_response(documents.model_metadata(served, versions))
        if action == "ready":
            check_method(method, "GET")
            return self._model_ready(name, version)
        if action == "config":
            check_method(method, "GET")
            return json_response(documents.model_config(self.plane.resolve(name, version)))
        if action == "stats":
            check_method(method, "GET")
            return json_response(documents.statistics([self.plane.resolve(name, version)]))
        raise NotFound(f"no route for {method} /v2/models/{name}/{action}")

    def _model_ready(self, name: str, version: int | None) -> Response:
        try:
            self.plane.resolve(name, version)
        except PierError as exc:
            status = http_status(exc)
            if status == 404:
                raise
            return Response(503, orjson.dumps({"name": name, "ready": False, "error": exc.message}))
        return json_response({"name": name, "ready": True})

    async def _repository(
        self, method: str, parts: list[str], headers: RequestHeaders, receive: Receive
    ) -> Response:
        check_method(method, "POST")
        body = await read_body(receive, headers, self.limit)
        if parts[3:] == ["index"]:
            return v2_http.repository_index(self.plane, body)
        if len(parts) == 6 and parts[3] == "models" and parts[5] in ("load", "unload"):
            return await v2_http.repository_action(self.plane, parts[4], parts[5], body)
        raise NotFound(f"no route for {method} {'/'.join(parts)}")

    def ready(self) -> bool:
        return self.state.is_ready(self.plane.repository)

    # ----- TensorFlow Serving --------------------------------------------------

    async def _tfserving(
        self, method: str, path: str, headers: RequestHeaders, receive: Receive
    ) -> Response:
        if not path.startswith("/v1/models"):
            raise NotFound(f"no route for {method} {path}")
        parsed = self._tfs_paths.get(path)
        if parsed is None:
            parsed = tfs_http.parse_path(path)
            if parsed is not None and len(self._tfs_paths) < PATH_CACHE_SIZE:
                self._tfs_paths[path] = parsed
        if parsed is None:
            check_method(method, "GET")
            return json_response({"models": self.plane.repository.model_names()})
        if parsed.verb is None:
            check_method(method, "GET")
            if parsed.metadata:
                served = self.plane.resolve(parsed.model, parsed.version, parsed.label)
                return tfs_http.model_metadata(served)
            return tfs_http.model_status(self.plane, parsed)
        check_method(method, "POST")
        served = self.plane.resolve(parsed.model, parsed.version, parsed.label)
        t0 = time.perf_counter()
        try:
            body = await read_body(receive, headers, self.limit)
            if parsed.verb == "predict":
                return await tfs_http.predict(self.plane, served, body)
            if parsed.verb == "classify":
                return await tfs_http.classify(self.plane, served, body)
            return await tfs_http.regress(self.plane, served, body)
        except PierError as exc:
            self.plane.record_failure(served, "tfserving", exc, time.perf_counter() - t0)
            raise

    # ----- everything else -----------------------------------------------------

    def _other(self, method: str, path: str) -> Response:
        if path == "/metrics":
            check_method(method, "GET")
            body, content_type = self.metrics.render()
            return Response(200, body, content_type.encode())
        if path == "/":
            check_method(method, "GET")
            return json_response({"status": "alive"})
        raise NotFound(f"no route for {method} {path}")
