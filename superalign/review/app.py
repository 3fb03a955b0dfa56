"""The review page: a small FastAPI app over one run's human-label queue.

Every route needs the run's token (header `X-Review-Token` or `?token=`), compared in constant
time; without it the answer is 401. One process serialises its store access with a lock (one
SQLite connection); several processes on the same run are kept apart by SQLite's own locking,
since claims and answers are conditional UPDATEs inside `BEGIN IMMEDIATE` transactions.
"""
from __future__ import annotations

import secrets
import threading
from pathlib import Path
from typing import Optional

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from superalign import review
from superalign.review.page import PAGE
from superalign.store import RunStore



class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reviewer: str = Field(min_length=1, max_length=80)
    label: Optional[float] = None  # 1.0 yes / 0.0 no; for two-option items the chosen index; None = skip
    comment: Optional[str] = Field(None, max_length=4000)


def create_app(run_dir: str | Path, token: str, lease_s: float = review.LEASE_S) -> FastAPI:
    store = RunStore(run_dir)
    lock = threading.Lock()
    app = FastAPI(title="superalign review", docs_url=None, redoc_url=None, openapi_url=None)

    def auth(request: Request):
        got = request.headers.get("x-review-token") or request.query_params.get("token") or ""
        if not secrets.compare_digest(got.encode(), token.encode()):
            raise HTTPException(401, "missing or wrong review token (it is printed when `superalign review` starts)")

    @app.get("/", response_class=HTMLResponse, dependencies=[Depends(auth)])
    def page():
        return PAGE.replace("{{RUN}}", store.run_id)

    @app.get("/api/next", dependencies=[Depends(auth)])
    def next_item(reviewer: str):
        if not reviewer.strip():
            raise HTTPException(422, "reviewer name is empty")
        with lock:
            return {"item": review.claim(store, reviewer.strip(), lease_s)}

    @app.post("/api/label/{label_id}", dependencies=[Depends(auth)])
    def label(label_id: str, ans: Answer):
        if ans.label is not None and ans.label not in (0.0, 1.0):
            raise HTTPException(422, "label must be 1 (yes), 0 (no) or null (skip); for two-option items 0 or 1 is the option index")
        with lock:
            try:
                review.submit(store, label_id, ans.reviewer.strip(), ans.label, ans.comment, lease_s)
            except review.Conflict as e:
                raise HTTPException(409, f"not recorded: {e}") from None
        return {"ok": True}

    @app.post("/api/release/{label_id}", dependencies=[Depends(auth)])
    def release(label_id: str, reviewer: str):
        with lock:
            return {"released": review.release(store, label_id, reviewer)}

    @app.get("/api/stats", dependencies=[Depends(auth)])
    def stats():
        with lock:
            return review.queue_stats(store)

    app.state.store = store
    return app


def new_token() -> str:
    return secrets.token_urlsafe(24)
