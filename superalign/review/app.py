"""The review page: a small FastAPI app over one run's human-label queue.

Every route needs the run's token (header `X-Review-Token` or `?token=`), compared in constant
time; without it the answer is 401. The token and the body size (Content-Length well-formed and at
most `max_body` bytes, and the bytes actually read) are checked by plain ASGI middleware before any
body is parsed. Every response carries a strict CSP (the page's one inline script and style run by
nonce; nothing else loads), `X-Frame-Options: DENY` and `Referrer-Policy: no-referrer` (the token is
in the page URL). Validation errors (422) name the field and never echo the input back.

One process serialises its store access with a lock (one SQLite connection); several processes on
the same run are kept apart by SQLite's own locking, since claims and answers are conditional
UPDATEs inside `BEGIN IMMEDIATE` transactions.
"""
from __future__ import annotations

import html
import json
import secrets
import threading
from pathlib import Path
from urllib.parse import parse_qs
from typing import Annotated, Literal, Optional, Union

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictFloat, StrictInt

from superalign import review
from superalign.asgi import replaying
from superalign.review.page import PAGE
from superalign.store import RunStore

MAX_BODY = 64 * 1024
MAX_NAME = 80


def _reviewer(v: str) -> str:
    """One rule for names in claim, release and submit: stripped, 1-80 printable characters."""
    v = v.strip()
    if not v:
        raise ValueError("reviewer name is empty")
    if len(v) > MAX_NAME:
        raise ValueError(f"reviewer name is longer than {MAX_NAME} characters")
    if not v.isprintable():
        raise ValueError("reviewer name has control characters")
    return v


Reviewer = Annotated[str, AfterValidator(_reviewer)]


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    reviewer: Reviewer
    # 1 yes / 0 no; for two-option items the chosen index; null = skip. A JSON number only: "1" and true are refused
    label: Optional[Union[StrictInt, StrictFloat]] = None
    comment: Optional[str] = Field(None, max_length=4000)
    refusal: Optional[Literal["full", "partial", "none"]] = None   # audit fields, kept in the label row's meta
    harmful: Optional[Literal["yes", "no"]] = None


def _headers(nonce: str | None = None) -> list[tuple[bytes, bytes]]:
    src = f"'nonce-{nonce}'" if nonce else "'none'"
    csp = (f"default-src 'none'; script-src {src}; style-src {src}; connect-src 'self'; img-src 'self'; "
           "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    return [(b"content-security-policy", csp.encode()), (b"x-frame-options", b"DENY"),
            (b"referrer-policy", b"no-referrer"), (b"x-content-type-options", b"nosniff"),
            (b"cache-control", b"no-store")]


class Guard:
    """Token, then body size, before the app parses anything; security headers on every response."""

    def __init__(self, app, token: str, max_body: int = MAX_BODY):
        self.app, self.token, self.max_body = app, token.encode(), max_body
        self.state = app.state  # the app's state (its store), reachable from the guarded app
    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        nonce = secrets.token_urlsafe(16)
        scope.setdefault("state", {})["nonce"] = nonce

        async def send_h(m):
            if m["type"] == "http.response.start":
                m = dict(m, headers=[h for h in m.get("headers", []) if h[0].lower() != b"content-security-policy"]
                         + _headers(nonce if scope["path"] == "/" else None))
            await send(m)

        h = {k.lower(): v for k, v in scope["headers"]}
        cl = h.get(b"content-length")
        # after an early answer uvicorn reads and drops a body it can (the client then reads the answer);
        # one that is malformed, chunked or over 4x the cap has its connection closed instead
        bad_cl = cl is not None and not (cl.isdigit() and len(cl) <= 18)
        huge = bad_cl or (cl is None and b"transfer-encoding" in h) or (cl is not None and int(cl) > 4 * self.max_body)

        async def fail(status: int, detail: str, close: bool = False):
            data = json.dumps({"detail": detail}).encode()
            await send_h({"type": "http.response.start", "status": status,
                          "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
                          + ([(b"connection", b"close")] if close or huge else [])})
            await send_h({"type": "http.response.body", "body": data})

        q = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        got = h.get(b"x-review-token") or (q.get("token") or [""])[0].encode("utf-8", "replace")
        if not secrets.compare_digest(got, self.token):
            return await fail(401, "missing or wrong review token (it is printed when `superalign review` starts)")
        if bad_cl:
            return await fail(400, "Content-Length must be a non-negative integer")
        if cl is not None and int(cl) > self.max_body:
            return await fail(413, f"request body over {self.max_body} bytes")
        if scope["method"] in ("POST", "PUT", "PATCH"):
            parts, n = [], 0
            while True:
                m = await receive()
                if m["type"] == "http.disconnect":
                    return
                n += len(m.get("body", b""))
                if n > self.max_body:
                    return await fail(413, f"request body over {self.max_body} bytes", close=True)
                parts.append(m.get("body", b""))
                if not m.get("more_body", False):
                    break
            return await self.app(scope, replaying(b"".join(parts), receive), send_h)
        await self.app(scope, receive, send_h)


def _trimmed(e: RequestValidationError) -> JSONResponse:
    """A 422 that names each bad field and never echoes the (possibly huge) input."""
    errs = [{"loc": [str(p)[:40] for p in err.get("loc", ())][:6], "msg": str(err.get("msg", ""))[:200]}
            for err in e.errors()[:5]]
    detail = "; ".join(".".join(x["loc"][1:] or x["loc"]) + ": " + str(x["msg"]) for x in errs)
    return JSONResponse({"detail": detail[:1000], "errors": errs}, 422)


def create_app(run_dir: str | Path, token: str, lease_s: float = review.LEASE_S, max_body: int = MAX_BODY):
    store = RunStore(run_dir)
    lock = threading.Lock()
    app = FastAPI(title="superalign review", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_exception_handler(RequestValidationError, lambda req, e: _trimmed(e))

    @app.get("/", response_class=HTMLResponse)
    def page(request: Request):
        nonce = request.scope["state"]["nonce"]
        return PAGE.replace("{{NONCE}}", nonce).replace("{{RUN}}", html.escape(str(store.run_id)))

    @app.get("/api/next")
    def next_item(reviewer: Reviewer):
        with lock:
            return {"item": review.claim(store, reviewer, lease_s)}

    @app.post("/api/label/{label_id}")
    def label(label_id: Annotated[str, Field(max_length=100)], ans: Answer):
        if ans.label is not None and ans.label not in (0, 1):
            raise HTTPException(422, "label must be 1 (yes), 0 (no) or null (skip); for two-option items 0 or 1 "
                                     "is the option index")
        with lock:
            try:
                review.submit(store, label_id, ans.reviewer, None if ans.label is None else float(ans.label),
                              ans.comment, lease_s, fields={"refusal": ans.refusal, "harmful": ans.harmful})
            except review.Invalid as e:
                raise HTTPException(422, str(e)) from None
            except review.Conflict as e:
                raise HTTPException(409, f"not recorded: {e}") from None
        return {"ok": True}

    @app.post("/api/release/{label_id}")
    def release(label_id: Annotated[str, Field(max_length=100)], reviewer: Reviewer):
        with lock:
            return {"released": review.release(store, label_id, reviewer)}

    @app.get("/api/stats")
    def stats():
        with lock:
            return review.queue_stats(store)

    app.state.store = store
    return Guard(app, token, max_body)


def new_token() -> str:
    return secrets.token_urlsafe(24)
