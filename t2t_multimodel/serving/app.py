"""The web application: TF Serving's REST API and the single-page UI.

`create_app(model)` builds a Starlette (ASGI) application over a
`served_model.ServedModel`; `serve(export_dir, ...)` loads the export and runs
that application under uvicorn. Routes (NAME is `model_name`, "multimodel"):

- `POST /v1/models/NAME[/versions/V]:predict`: TF Serving's predict API
  (`rest.py`), batched across concurrent requests (`batching.py`);
- `GET /v1/models/NAME[/versions/V]`: model status;
- `GET /v1/models/NAME[/versions/V]/metadata`: the signature defs;
- `GET /`: the page (`static/index.html`), which talks to the API above.

Every error is JSON, `{"error": "..."}`: 400 for a bad request (malformed
or too deeply nested JSON, unknown signature or input, undecodable bytes,
more instances, image pixels or audio seconds than the limits of
`request_limits.py`), 403 for a `Host` that is not this server's and 415 for
a POST that is not `application/json` (`cross_site.py`), 404 for an unknown
model, version or route, 413 for a body over `max_request_bytes`, 503 when
the queue is full, 504 past `request_timeout_s`, 500 for a failure of the
server itself. Answers carry a `Server-Timing` header with the time the
server spent (the page shows it).
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import pathlib
import socket
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any

import uvicorn
from starlette import (
    applications,
    exceptions,
    middleware,
    requests,
    responses,
    routing,
    staticfiles,
)

from t2t_multimodel.serving import (
    batching,
    cross_site,
    request_limits,
    rest,
    served_model,
)

STATIC_DIR = pathlib.Path(__file__).parent / "static"
DEFAULT_MODEL_NAME = "multimodel"
_MAX_DRAIN_BYTES = 64 * 1024 * 1024


def _json(
    payload: Any, status: int = 200, **headers: str
) -> responses.Response:
    # TF Serving writes NaN/Infinity as such, and UTF-8 unescaped.
    body = json.dumps(payload, ensure_ascii=False, allow_nan=True)
    return responses.Response(
        body, status, headers=headers, media_type="application/json"
    )


def _error(error: rest.RestError) -> responses.Response:
    return _json({"error": error.message}, error.status)


async def _read_body(request: requests.Request, limit: int) -> bytes:
    """The request body, or a 413 `RestError` if it exceeds `limit`.

    An oversize body is still read (and dropped) up to `_MAX_DRAIN_BYTES`,
    so a client that sends it whole before reading gets the 413 rather than
    a connection reset; past that the connection is closed at once.
    """
    declared = request.headers.get("content-length")
    if declared is not None and not declared.isdigit():
        raise rest.RestError(f"bad Content-Length: {declared!r}")
    size = int(declared) if declared is not None else 0
    error = rest.RestError(
        f"request body exceeds the limit of {limit} bytes"
        + (f" ({declared} bytes)" if declared is not None else ""),
        413,
    )
    if size > max(limit, _MAX_DRAIN_BYTES):
        raise error
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > _MAX_DRAIN_BYTES:
            raise error
        if size <= limit:
            chunks.append(chunk)
    if size > limit:
        raise error
    return b"".join(chunks)


class _Api:
    """The route handlers, over one model and one batch scheduler."""

    def __init__(
        self,
        model: served_model.ServedModel,
        scheduler: batching.BatchScheduler,
        *,
        model_name: str,
        max_request_bytes: int,
        request_timeout_s: float,
        max_instances_per_request: int,
        max_image_pixels: int,
        max_audio_seconds: float,
    ) -> None:
        self.model = model
        self.scheduler = scheduler
        self.model_name = model_name
        self.max_request_bytes = max_request_bytes
        self.request_timeout_s = request_timeout_s
        self.max_instances_per_request = max_instances_per_request
        self.max_image_pixels = max_image_pixels
        self.max_audio_seconds = max_audio_seconds
        page = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
        self.page = page.replace("{{MODEL_NAME}}", html.escape(model_name))

    def _check_servable(self, request: requests.Request) -> None:
        name = request.path_params["name"]
        version = request.path_params.get("version")
        if name != self.model_name or version not in (None, self.model.version):
            wanted = (
                f"Specific({name}, {version})" if version else f"Latest({name})"
            )
            raise rest.RestError(
                f"Servable not found for request: {wanted}", 404
            )

    async def index(self, request: requests.Request) -> responses.Response:
        return responses.HTMLResponse(self.page)

    async def status(self, request: requests.Request) -> responses.Response:
        try:
            self._check_servable(request)
        except rest.RestError as e:
            return _error(e)
        return _json(rest.model_status_json(self.model.version))

    async def metadata(self, request: requests.Request) -> responses.Response:
        try:
            self._check_servable(request)
        except rest.RestError as e:
            return _error(e)
        return _json(
            rest.model_metadata_json(
                self.model_name,
                self.model.version,
                self.model.signature_def_json(),
            )
        )

    async def predict(self, request: requests.Request) -> responses.Response:
        start = time.perf_counter()
        try:
            self._check_servable(request)
            body = await _read_body(request, self.max_request_bytes)
            parsed = self._parse(body)
            outputs = await self._run(parsed)
            payload = rest.format_predict_response(
                outputs,
                num_instances=parsed.num_instances,
                columnar=parsed.columnar,
            )
        except rest.RestError as e:
            return _error(e)
        elapsed_ms = (time.perf_counter() - start) * 1000.0
        return _json(
            payload, **{"Server-Timing": f"total;dur={elapsed_ms:.1f}"}
        )

    def _parse(self, body: bytes) -> rest.PredictRequest:
        """The checked request; `RestError` (400) if malformed or too big."""
        try:
            parsed = rest.parse_predict_request(
                rest.decode_json(body),
                self.model.signatures,
                max_instances=self.max_instances_per_request,
            )
        except RecursionError:  # Nesting that json.loads still accepted.
            raise rest.RestError("the request is nested too deeply") from None
        request_limits.check_media(
            parsed.inputs,
            max_image_pixels=self.max_image_pixels,
            max_audio_seconds=self.max_audio_seconds,
        )
        return parsed

    async def _run(self, parsed: rest.PredictRequest) -> dict[str, Any]:
        try:
            future = self.scheduler.submit(
                parsed.signature_name, parsed.inputs, parsed.num_instances
            )
        except batching.QueueFullError as e:
            raise rest.RestError(f"server busy: {e}", 503) from e
        except RuntimeError as e:  # closed: the server is shutting down
            raise rest.RestError(str(e), 503) from e
        try:
            return await asyncio.wait_for(
                asyncio.wrap_future(future), self.request_timeout_s
            )
        except served_model.ModelInputError as e:
            raise rest.RestError(str(e), 400) from e
        except TimeoutError as e:
            raise rest.RestError(
                f"no answer within {self.request_timeout_s} s", 504
            ) from e
        except Exception as e:  # noqa: BLE001  (a model failure: a 500)
            logging.exception("predict on %s failed", parsed.signature_name)
            raise rest.RestError(f"{type(e).__name__}: {e}", 500) from e


async def _http_error(
    request: requests.Request, error: Exception
) -> responses.Response:
    assert isinstance(error, exceptions.HTTPException)
    return _json({"error": error.detail}, error.status_code)


async def _internal_error(
    request: requests.Request, error: Exception
) -> responses.Response:
    # Starlette logs the traceback after this answer; the client gets JSON
    # like every other error, not a plain-text "Internal Server Error".
    return _json({"error": f"internal error: {type(error).__name__}"}, 500)


def create_app(
    model: served_model.ServedModel,
    *,
    model_name: str = DEFAULT_MODEL_NAME,
    max_batch_size: int = 32,
    batch_timeout_ms: float = 5.0,
    max_request_bytes: int = 16 * 1024 * 1024,
    max_queued_requests: int = 1024,
    request_timeout_s: float = 120.0,
    max_instances_per_request: int = request_limits.DEFAULT_MAX_INSTANCES,
    max_image_pixels: int = request_limits.DEFAULT_MAX_IMAGE_PIXELS,
    max_audio_seconds: float = request_limits.DEFAULT_MAX_AUDIO_SECONDS,
    allowed_hosts: Sequence[str] = (),
) -> applications.Starlette:
    """The ASGI application serving `model`.

    Args:
        model: the loaded export.
        model_name: NAME in the `/v1/models/NAME` paths.
        max_batch_size: most instances in one model call (a request of
            more runs alone).
        batch_timeout_ms: how long a request waits for others to batch with.
        max_request_bytes: larger bodies get a 413.
        max_queued_requests: requests beyond this many waiting get a 503.
        request_timeout_s: a request waiting longer gets a 504.
        max_instances_per_request: a request with more gets a 400.
        max_image_pixels: an `image_bytes` input whose header declares more
            pixels gets a 400 (before it is decoded).
        max_audio_seconds: a longer `audio_bytes` WAV gets a 400.
        allowed_hosts: `Host` names served besides localhost and IP
            addresses ("*": any); see `cross_site.py`.

    Returns:
        The application; its lifespan stops the batching thread.
    """
    scheduler = batching.BatchScheduler(
        model.run,
        max_batch_size=max_batch_size,
        batch_timeout_ms=batch_timeout_ms,
        max_queued_requests=max_queued_requests,
    )
    api = _Api(
        model,
        scheduler,
        model_name=model_name,
        max_request_bytes=max_request_bytes,
        request_timeout_s=request_timeout_s,
        max_instances_per_request=max_instances_per_request,
        max_image_pixels=max_image_pixels,
        max_audio_seconds=max_audio_seconds,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: applications.Starlette) -> AsyncIterator[None]:
        yield
        scheduler.close()

    base = "/v1/models/{name}"
    versioned = base + "/versions/{version}"
    routes = [routing.Route("/", api.index)]
    for prefix in (base, versioned):
        routes += [
            routing.Route(prefix + ":predict", api.predict, methods=["POST"]),
            routing.Route(prefix + "/metadata", api.metadata),
            routing.Route(prefix, api.status),
        ]
    routes.append(
        routing.Mount("/static", staticfiles.StaticFiles(directory=STATIC_DIR))
    )
    app = applications.Starlette(
        routes=routes,
        lifespan=lifespan,
        middleware=[
            middleware.Middleware(
                cross_site.CrossSiteGuard, allowed_hosts=tuple(allowed_hosts)
            )
        ],
        exception_handlers={
            exceptions.HTTPException: _http_error,
            Exception: _internal_error,
        },
    )
    app.state.scheduler = scheduler
    return app


def serve(
    export_dir: str,
    *,
    host: str = "127.0.0.1",
    port: int = 8501,
    access_log: bool = False,
    **app_kwargs: Any,
) -> None:
    """Loads `export_dir` and serves it until SIGINT/SIGTERM.

    Prints one line, "t2t-mm-serve: serving ... at http://HOST:PORT/", once
    the socket listens (`port=0` picks a free port, shown there).

    Args:
        export_dir: see `served_model.resolve_version`.
        host: the address to listen on; also a `Host` name the server
            answers to (see `cross_site.py`).
        port: the TCP port (8501 is TF Serving's REST port).
        access_log: log every request.
        **app_kwargs: passed to `create_app`.

    Raises:
        served_model.ExportLoadError: the export cannot be read.
    """
    model = served_model.ServedModel(export_dir)
    allowed_hosts = [*app_kwargs.pop("allowed_hosts", ()), host]
    app = create_app(model, allowed_hosts=allowed_hosts, **app_kwargs)
    family, kind, proto, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM
    )[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    sock.listen(2048)
    bound = sock.getsockname()[1]
    url_host = f"[{host}]" if ":" in host else host
    print(
        f"t2t-mm-serve: serving {model.saved_model_dir} (version "
        f"{model.version}; signatures: {', '.join(model.signatures)}) at "
        f"http://{url_host}:{bound}/",
        flush=True,
    )
    config = uvicorn.Config(
        app, log_level="warning", access_log=access_log, timeout_keep_alive=5
    )
    uvicorn.Server(config).run(sockets=[sock])
