"""One raw ASGI app serving TF Serving REST and Open Inference Protocol REST on one port.

Inference paths are routed by splitting the path, not by walking a framework's
route table: this app is on every request's path.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import orjson

from pier.errors import NotFound, PierError
from pier.observe.logs import AccessLog
from pier.serving.dataplane import DataPlane
from pier.serving.protocols import tfs_rest, v2_config, v2_metadata, v2_rest, v2_statistics
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
    response_start,
)
from pier.serving.protocols.v2_rest import check_method, parse_model_path

log = logging.getLogger(__name__)

PATH_CACHE_SIZE = 4096
MODEL_ACTIONS = frozenset({"", "infer", "ready", "config", "stats"})


#: paths polled by health checkers and scrapers: answered, counted, but not access-logged
QUIET_PATHS = ("/v2/health/", "/metrics")


@dataclass(frozen=True, slots=True)
class InferRoute:
    """A POST path that runs a model, cached so that a prediction is found by one lookup."""

    protocol: str  # "v2" or "tfserving"
    verb: str  # "infer" (V2), or TF Serving's "predict", "classify" or "regress"
    model: str
    version: int | None
    label: str | None


class RestApp:
    """The HTTP side of one model server process."""

    def __init__(
        self, plane: DataPlane, max_request_size: int, access_log: AccessLog | None
    ) -> None:
        self.plane = plane
        self.metrics = plane.metrics
        self.limit = max_request_size
        self.access_log = access_log
        # Parsed model paths, so a request for a known path costs one dict lookup.
        self._model_paths: dict[str, tuple[str, int | None, str]] = {}
        self._tfs_paths: dict[str, tfs_rest.TfsPath] = {}
        # Inference paths seen before (filled with the caches above): a prediction skips
        # the routing below, which is written for the many other paths.
        self._infer_routes: dict[str, InferRoute] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        t0 = time.perf_counter()
        method: str = scope["method"]
        path: str = scope["path"]
        route = self._infer_routes.get(path)
        if route is not None:
            protocol = route.protocol
        elif path.startswith("/v2"):
            protocol = "v2"
        else:
            protocol = "tfserving" if path.startswith("/v1") else "other"
        headers = None
        try:
            headers = RequestHeaders.parse(scope["headers"])
            if route is not None and method == "POST":
                response = await self._infer(route, headers, receive)
            elif protocol == "v2":
                response = await self._v2(method, path, headers, receive)
            elif protocol == "tfserving":
                response = await self._tfserving(method, path, headers, receive)
            else:
                response = self._other(method, path)
        except PierError as exc:
            response = error_response(exc.message, http_status(exc))
        except Exception:
            # the REST edge: anything outside our tree is a logged 500
            log.exception("unhandled error on %s %s", method, path)
            response = error_response("internal server error; see the server log", 500)
        if headers is not None and headers.accept_encoding:
            compress(response, headers.accept_encoding)
        await send(response_start(response))
        await send({"type": "http.response.body", "body": response.body})
        self.metrics.http_response(protocol, response.status)
        # Probes (health, metrics) would drown the requests that matter; they are not logged.
        if self.access_log is not None and not path.startswith(QUIET_PATHS):
            client = scope.get("client")
            self.access_log.write(
                method,
                path,
                response.status,
                time.perf_counter() - t0,
                len(response.body),
                client[0] if client else "",
            )

    async def _infer(
        self, route: InferRoute, headers: RequestHeaders, receive: Receive
    ) -> Response:
        """Run a POST to an inference path of either protocol; count it if it fails."""
        plane = self.plane
        served = plane.resolve(route.model, route.version, route.label)
        t0 = time.perf_counter()
        try:
            body = await read_body(receive, headers, self.limit)
            verb = route.verb
            # The data plane runs between the protocol's decode and encode.
            if verb == "infer":
                request = v2_rest.infer_request(served, body, headers, plane.max_elements)
                wanted = v2_rest.requested_outputs(request)
                outputs = await plane.infer(served, request.inputs, v2_rest.PROTOCOL, wanted)
                return v2_rest.infer_response(served, request, outputs)
            if verb == "predict":
                predict = tfs_rest.predict_request(served, body, plane.max_elements)
                outputs = await plane.infer(served, predict.inputs, tfs_rest.PROTOCOL)
                return tfs_rest.predict_response(predict, outputs)
            if verb == "classify":
                return await tfs_rest.classify(plane, served, body)
            return await tfs_rest.regress(plane, served, body)
        except Exception as exc:
            plane.record_failure(served, route.protocol, exc, t0)
            raise

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
                    if action == "infer":
                        self._infer_routes[path] = InferRoute("v2", action, name, version, None)
        if cached is not None:
            return await self._v2_model(method, *cached, headers, receive)
        parts = path.split("/")
        n = len(parts)
        if n == 2:  # /v2
            check_method(method, "GET")
            return json_response(v2_metadata.server_metadata())
        section = parts[2]
        if path == "/v2/models/stats":
            check_method(method, "GET")
            return json_response(v2_statistics.statistics(self.plane.servable()))
        if section == "models" and n == 3:
            check_method(method, "GET")
            return json_response({"models": self.plane.model_names()})
        if section == "health" and n == 4:
            check_method(method, "GET")
            if parts[3] == "live":
                return json_response({"live": self.plane.live()})
            if parts[3] == "ready":
                ready = self.plane.ready()
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
            route = InferRoute("v2", action, name, version, None)
            return await self._infer(route, headers, receive)
        if action == "":
            check_method(method, "GET")
            served = self.plane.resolve(name, version)
            versions = self.plane.metadata_versions(served, explicit=version is not None)
            return json_response(v2_metadata.model_metadata(served, versions))
        if action == "ready":
            check_method(method, "GET")
            return self._model_ready(name, version)
        if action == "config":
            check_method(method, "GET")
            return json_response(v2_config.model_config(self.plane.resolve(name, version)))
        if action == "stats":
            check_method(method, "GET")
            return json_response(v2_statistics.statistics([self.plane.resolve(name, version)]))
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
            return v2_rest.repository_index(self.plane, body)
        if len(parts) == 6 and parts[3] == "models" and parts[5] in ("load", "unload"):
            return await v2_rest.repository_action(self.plane, parts[4], parts[5], body)
        raise NotFound(f"no route for {method} {'/'.join(parts)}")

    # ----- TensorFlow Serving --------------------------------------------------

    async def _tfserving(
        self, method: str, path: str, headers: RequestHeaders, receive: Receive
    ) -> Response:
        if not path.startswith("/v1/models"):
            raise NotFound(f"no route for {method} {path}")
        parsed = self._tfs_paths.get(path)
        if parsed is None:
            parsed = tfs_rest.parse_path(path)
            if parsed is not None and len(self._tfs_paths) < PATH_CACHE_SIZE:
                self._tfs_paths[path] = parsed
                if parsed.verb is not None:
                    self._infer_routes[path] = _tfs_route(parsed, parsed.verb)
        if parsed is None:
            check_method(method, "GET")
            return json_response({"models": self.plane.model_names()})
        if parsed.verb is None:
            check_method(method, "GET")
            if parsed.metadata:
                served = self.plane.resolve(parsed.model, parsed.version, parsed.label)
                return tfs_rest.model_metadata(served)
            return tfs_rest.model_status(self.plane, parsed)
        check_method(method, "POST")
        return await self._infer(_tfs_route(parsed, parsed.verb), headers, receive)

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


def _tfs_route(parsed: tfs_rest.TfsPath, verb: str) -> InferRoute:
    return InferRoute("tfserving", verb, parsed.model, parsed.version, parsed.label)
