"""The HTTP side: a FastAPI app on uvicorn, guarded before any body is read.

`Guard` is plain ASGI middleware, so it runs before FastAPI touches the request: it checks the API
key, the Content-Length (well-formed, at most `max_body` bytes), the Content-Type of POSTs
(application/json), then reads the body itself with a byte cap and a time limit (a slow or endless
upload gets 413/408, never unbounded memory) and hands the buffered body on. After an early error
the rest of a body up to 4x the cap is read and dropped by uvicorn (so a client still writing can
read the answer); a bigger or chunked one has its connection closed. Every error, from the
guard, the routes or an unknown path, has OpenAI's shape {"error": {message, type, param, code}}.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import os
import socket
import threading

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from superalign.asgi import replaying
from superalign.errors import SuperalignError
from superalign.serve.schema import BadRequest, loads
from superalign.serve.batcher import Cancelled
from superalign.serve.service import Service, error_of

OPEN_PATHS = ("/health", "/v1/health")  # liveness probes need no key; they reveal only ok / not ok


async def _send_json(send, status: int, obj: dict, extra: list | None = None, close: bool = False):
    """An error answered before the body was read. Without `close`, uvicorn reads and drops the rest of the
    body after it (nothing is buffered) and the connection stays usable; closing a socket with unread
    data resets it, and the client may lose the answer - so only bodies too big to drain are cut off."""
    data = json.dumps(obj).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
                + ([(b"connection", b"close")] if close else []) + (extra or [])})
    await send({"type": "http.response.body", "body": data})


class Guard:
    def __init__(self, app, api_key: str | None, max_body: int, body_timeout_s: float):
        self.app, self.api_key, self.max_body, self.body_timeout_s = app, api_key, max_body, body_timeout_s

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        h = {k.lower(): v for k, v in scope["headers"]}
        path = scope["path"].rstrip("/") or "/"
        cl = h.get(b"content-length")
        if cl is not None and not (cl.isdigit() and len(cl) <= 18):
            return await _send_json(send, 400, BadRequest("Content-Length must be a non-negative integer",
                                                          code="invalid_content_length").body(), close=True)
        huge = (cl is not None and int(cl) > 4 * self.max_body) or (cl is None and b"transfer-encoding" in h)
        if self.api_key is not None and path not in OPEN_PATHS:
            given = h.get(b"authorization", b"")
            if not hmac.compare_digest(given, f"Bearer {self.api_key}".encode()):
                return await _send_json(send, 401, BadRequest(
                    "missing or wrong API key (send `Authorization: Bearer <key>`)", 401,
                    code="invalid_api_key").body(), [(b"www-authenticate", b"Bearer")], close=huge)
        if scope["method"] != "POST":
            return await self.app(scope, receive, send)
        if cl is not None and int(cl) > self.max_body:
            return await _send_json(send, 413, BadRequest(
                f"request body of {int(cl)} bytes is over the limit of {self.max_body} bytes", 413,
                code="request_too_large").body(), close=huge)
        ctype = h.get(b"content-type", b"").split(b";")[0].strip().lower()
        if ctype != b"application/json":
            return await _send_json(send, 415, BadRequest(
                "send the body as JSON with `Content-Type: application/json`", 415,
                code="unsupported_media_type").body(), close=huge)
        try:
            body = await asyncio.wait_for(self._read(receive), self.body_timeout_s)
        except BadRequest as e:
            return await _send_json(send, e.status, e.body(), close=True)
        except asyncio.TimeoutError:
            return await _send_json(send, 408, BadRequest(f"the body did not arrive within {self.body_timeout_s:.0f}s",
                                                          408, code="timeout").body(), close=True)
        if body is None:
            return  # the client left while sending
        await self.app(scope, replaying(body, receive), send)

    async def _read(self, receive) -> bytes | None:
        parts, n = [], 0
        while True:
            m = await receive()
            if m["type"] == "http.disconnect":
                return None
            chunk = m.get("body", b"")
            n += len(chunk)
            if n > self.max_body:
                raise BadRequest(f"request body is over the limit of {self.max_body} bytes", 413,
                                 code="request_too_large")
            parts.append(chunk)
            if not m.get("more_body", False):
                return b"".join(parts)


def create_app(service: Service, api_key: str | None = None, max_body: int = 1 << 20,
               body_timeout_s: float = 30.0) -> FastAPI:
    app = FastAPI(title="superalign serve", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(BadRequest)
    async def _bad(request, e: BadRequest):
        return JSONResponse(e.body(), e.status)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request, e: StarletteHTTPException):
        return JSONResponse(BadRequest(f"no route {request.method} {request.url.path[:200]}"
                                       if e.status_code == 404 else str(e.detail), e.status_code,
                                       code="not_found" if e.status_code == 404 else "invalid_request").body(),
                            e.status_code)

    @app.exception_handler(Exception)
    async def _crash(request, e: Exception):  # a bug: report it as the server's fault, keep serving
        return JSONResponse(BadRequest(f"internal error: {type(e).__name__}", 500, code="server_error").body(), 500)

    async def complete(kind: str, request: Request):
        body = loads(await request.body())
        req, name, jobs = service.jobs(kind, body)
        try:
            if req.stream:
                events = await service.stream(kind, name, req, jobs, request.is_disconnected)
                return StreamingResponse(events, media_type="text/event-stream",
                                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
            await service.run(jobs, request.is_disconnected)
        except Cancelled as e:
            raise error_of(e) from None
        return service.chat_response(name, req, jobs[0]) if kind == "chat" else \
            service.completion_response(name, req, jobs)

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        return await complete("chat", request)

    @app.post("/v1/completions")
    async def completions(request: Request):
        return await complete("completions", request)

    @app.get("/v1/models")
    def models():
        return service.models()

    @app.get("/health")
    @app.get("/v1/health")
    def health():
        ok, why = service.batcher.health()
        return JSONResponse({"status": "ok" if ok else "error", "detail": why}, 200 if ok else 503)

    @app.get("/stats")
    @app.get("/v1/stats")
    def stats():
        return service.stats()

    return Guard(app, api_key, max_body, body_timeout_s)


def _h11_with_head_timeout(seconds: float):
    """uvicorn's h11 protocol plus a deadline for the request head: uvicorn keeps a connection that
    sends nothing, or half a header block, open forever (slowloris). The timer is armed when the
    connection opens and after every response, and closes the connection if no new request has
    started by then (a request that is being answered is never cut by it)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class TimedH11(H11Protocol):
        def connection_made(self, transport):
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self):
            super().on_response_complete()
            self._arm()

        def _arm(self):
            armed = self.cycle

            def fire():
                if self.cycle is armed and (armed is None or armed.response_complete) \
                        and not self.transport.is_closing():
                    self.transport.close()
            self.loop.call_later(seconds, fire)
    return TimedH11


class Server:
    """`Server(lm, names).start()` serves in a background thread (tests); `.serve_forever()` blocks."""

    def __init__(self, lm, served_names: list[str], host: str = "127.0.0.1", port: int = 8000,
                 default_max_tokens: int = 256, window_ms: float = 5.0, max_batch: int | None = None,
                 api_key_env: str | None = None, log_requests: bool = False, max_body: int = 1 << 20,
                 request_timeout_s: float = 600.0, stall_s: float = 120.0, max_connections: int = 512,
                 context: int | None = None, body_timeout_s: float = 30.0, head_timeout_s: float = 10.0,
                 max_queue: int = 1024):
        import uvicorn
        api_key = os.environ.get(api_key_env) if api_key_env else None
        if api_key_env and not api_key:
            raise SuperalignError(f"--api-key-env names {api_key_env!r} but that environment variable is empty",
                                  f"export {api_key_env}=<key> before starting, or leave --api-key-env out")
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((host, port))
            self.sock.listen(2048)  # clients that connect before uvicorn runs wait in the backlog, not refused
        except OSError as e:
            self.sock.close()
            raise SuperalignError(f"cannot listen on {host}:{port}: {e.strerror or e}",
                                  "pass another --port (or stop the process that holds this one)") from None
        self.service = Service(lm, served_names, default_max_tokens, window_ms, max_batch, context,
                               request_timeout_s, stall_s, max_queue)
        self.app = create_app(self.service, api_key, max_body, body_timeout_s)
        # keep-alive connections idle > 5 s are closed, so is one without a request head after head_timeout_s;
        # beyond max_connections new ones get 503; headers are capped at 64 KiB by h11
        self.uv = uvicorn.Server(uvicorn.Config(
            self.app, log_level="info" if log_requests else "warning", access_log=log_requests,
            http=_h11_with_head_timeout(head_timeout_s),
            timeout_keep_alive=5, limit_concurrency=max_connections, h11_max_incomplete_event_size=64 * 1024,
            timeout_graceful_shutdown=5))
        self.host, self.port = host, self.sock.getsockname()[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{'[' + self.host + ']' if ':' in self.host else self.host}:{self.port}/v1"

    def start(self) -> "Server":
        import time
        self._thread = threading.Thread(target=self.uv.run, kwargs={"sockets": [self.sock]}, daemon=True)
        self._thread.start()
        while not self.uv.started and self._thread.is_alive():
            time.sleep(0.02)
        return self

    def serve_forever(self):
        try:
            self.uv.run(sockets=[self.sock])
        finally:
            self.close()

    def close(self):
        if self._thread is not None:
            self.uv.should_exit = True
            self._thread.join(10)
        self.sock.close()
        self.service.batcher.close()


def from_config(cfg, role: str, **kw) -> Server:
    """A server for the local model bound to `role` in a validated `Config`."""
    from superalign.models import config as C
    from superalign.models.local import LocalLM
    rc = cfg.role(role)
    if not isinstance(rc, C.LocalModel):
        raise SuperalignError(f"role {role!r} is bound to backend {rc.backend!r}; `serve` hosts local models only",
                              f"bind roles.{role} to `backend: local` in the config, or serve another role")
    lm = LocalLM(rc.model, rc.device, rc.dtype, rc.batch_size, rc.static_cache, seed=cfg.run.seed, compile=rc.compile,
                 batch_tokens=rc.batch_tokens)
    names = list(dict.fromkeys([kw.pop("served_name", None) or rc.model, role]))
    kw.setdefault("default_max_tokens", cfg.generation.max_new_tokens)
    return Server(lm, names, **kw)
